# The two commands of the README:
#   make book   create .venv if needed, execute every chapter that has no outputs, render _build/html
#   make test   create .venv if needed, run the unit tests, nbval over every chapter, and a
#               warnings-as-errors book build
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.lga-installed
# the standard split lists beside the repository, used by the tests as a pre-filled cache
SHARED  ?= $(abspath ../shared)
export LGA_SHARED_DIR ?= $(SHARED)
# ... and as the split-list cache of the chapters (readers without it download the lists)
ifneq ($(wildcard $(SHARED)/splits/SOURCES.md),)
export LGA_SPLITS_DIR ?= $(SHARED)/splits
endif

.PHONY: book test unit nbval html env clean

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e ".[book,test]"
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 --display-name "Python 3 (lga)" > /dev/null
	@touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build --path-output . .

test: unit nbval html

unit: $(STAMP)
	$(PY) -m pytest tests

nbval: $(STAMP)
	$(PY) -m pytest --nbval book --nbval-sanitize-with book/nbval_sanitize.cfg -p no:cacheprovider

html: $(STAMP)
	$(VENV)/bin/jupyter-book build -W -n --keep-going --path-output . .

clean:
	rm -rf _build
