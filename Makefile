# The two commands of the README:
#   make book   create .venv if needed, execute every chapter that has no outputs, render _build/html
#   make test   create .venv if needed, run the unit tests (the fast ones, then the slow end-to-end
#               ones), nbval over every chapter, and a warnings-as-errors book build; from an empty
#               data cache (fresh_data below)
# and, for authors: make execute   re-execute every chapter from an empty cache and save the outputs
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

# What the static HTML loads, served by the book itself so that it works offline (no CDN): the
# ipywidgets manager (@jupyter-widgets/html-manager's embed bundle and its fonts) and MathJax. Each
# pinned npm package is fetched once from the npm registry into build/npm/ (kept, so later builds are
# offline) and copied to book/_static/ (not committed); _config.yml points myst-nb and Sphinx there.
HTML_MANAGER  := 1.0.15
MATHJAX       := 3.2.2
REVEAL        := 5.2.1
NPM_DIR       := build/npm
WIDGETS_JS    := book/_static/widgets/embed.js
MATHJAX_JS    := book/_static/mathjax/tex-mml-chtml.js
REVEAL_JS     := book/_static/reveal.js/dist/reveal.js
# every chapter's slide deck (course/build.py --slides), listed on book/slides.md; made from the
# chapters' slideshow metadata, so remade when a chapter changes
SLIDES        := book/_static/slides/.built
ASSETS        := $(WIDGETS_JS) $(MATHJAX_JS) $(REVEAL_JS) $(SLIDES)
# the browser that tests/book/test_browser.py drives (Debian package names)
CHROMIUM      ?= chromium

.PHONY: book test unit slow nbval html env assets widgets browser stamp execute tiny-clip gpu-check test-oldest-torch clean course release

env: $(STAMP)

# pyproject.toml declares the versions lga works with (ranges); constraints.txt pins the exact ones
# that CI, `make` and environment.yml use (tests/test_packaging.py checks the three agree)
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[book,test]"
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 --display-name "Python 3 (lga)" > /dev/null
	@touch $(STAMP)

assets: $(ASSETS)
widgets: assets

# npm pack NAME VERSION: the package's tarball in $(NPM_DIR), fetched once (npm's cache first)
define npm_pack
	@command -v npm > /dev/null || { echo "ERROR: npm is needed once to fetch $(1)@$(2) (apt-get install npm)" >&2; exit 1; }
	mkdir -p $(NPM_DIR)
	cd $(NPM_DIR) && npm pack --silent --prefer-offline $(1)@$(2) > /dev/null
	@test -s $@ || { echo "ERROR: npm pack did not produce $@" >&2; exit 1; }
endef

$(NPM_DIR)/jupyter-widgets-html-manager-$(HTML_MANAGER).tgz:
	$(call npm_pack,@jupyter-widgets/html-manager,$(HTML_MANAGER))

$(NPM_DIR)/mathjax-$(MATHJAX).tgz:
	$(call npm_pack,mathjax,$(MATHJAX))

$(WIDGETS_JS): $(NPM_DIR)/jupyter-widgets-html-manager-$(HTML_MANAGER).tgz
	rm -rf $(NPM_DIR)/html-manager book/_static/widgets
	mkdir -p $(NPM_DIR)/html-manager book/_static/widgets
	tar -xzf $< -C $(NPM_DIR)/html-manager
	cd $(NPM_DIR)/html-manager/package/dist && cp embed.js embed.js.LICENSE.txt *.woff *.woff2 *.ttf *.eot *.svg $(CURDIR)/book/_static/widgets/
	@test -s $@ || { echo "ERROR: $@ is missing after unpacking $<" >&2; exit 1; }
	@touch $@

# MathJax's combined TeX+MathML/CHTML bundle with the components it loads on demand (fonts, TeX
# extensions, menu, accessibility); the other combined bundles are left out
$(MATHJAX_JS): $(NPM_DIR)/mathjax-$(MATHJAX).tgz
	rm -rf $(NPM_DIR)/mathjax book/_static/mathjax
	mkdir -p $(NPM_DIR)/mathjax book/_static/mathjax
	tar -xzf $< -C $(NPM_DIR)/mathjax
	cd $(NPM_DIR)/mathjax/package/es5 && cp -r tex-mml-chtml.js startup.js core.js loader.js input output ui a11y sre adaptors $(CURDIR)/book/_static/mathjax/
	cp $(NPM_DIR)/mathjax/package/LICENSE book/_static/mathjax/
	@test -s $@ || { echo "ERROR: $@ is missing after unpacking $<" >&2; exit 1; }
	@touch $@

$(NPM_DIR)/reveal.js-$(REVEAL).tgz:
	$(call npm_pack,reveal.js,$(REVEAL))

# reveal.js for the slides: the UMD bundle, its styles, the white theme with its (local) fonts, the
# speaker-notes plugin (the other themes load web fonts)
$(REVEAL_JS): $(NPM_DIR)/reveal.js-$(REVEAL).tgz
	rm -rf $(NPM_DIR)/reveal.js book/_static/reveal.js
	mkdir -p $(NPM_DIR)/reveal.js book/_static/reveal.js/dist/theme/fonts book/_static/reveal.js/plugin/notes
	tar -xzf $< -C $(NPM_DIR)/reveal.js
	cd $(NPM_DIR)/reveal.js/package && cp dist/reveal.js dist/reveal.css dist/reset.css $(CURDIR)/book/_static/reveal.js/dist/ \
	  && cp dist/theme/white.css $(CURDIR)/book/_static/reveal.js/dist/theme/ \
	  && cp -r dist/theme/fonts/source-sans-pro $(CURDIR)/book/_static/reveal.js/dist/theme/fonts/ \
	  && cp plugin/notes/notes.js $(CURDIR)/book/_static/reveal.js/plugin/notes/ && cp LICENSE $(CURDIR)/book/_static/reveal.js/
	@test -s $@ || { echo "ERROR: $@ is missing after unpacking $<" >&2; exit 1; }
	@touch $@

$(SLIDES): $(STAMP) $(REVEAL_JS) $(wildcard book/[0-9][0-9]_*.ipynb) course/build.py course/myst.py $(wildcard course/templates/*/*)
	$(PY) course/build.py --only-slides --slides book/_static/slides
	@touch $@

# the course (course/README.md): every chapter's code-along and graded notebooks in course/student
# (committed: Colab opens them from the repository), the nbgrader course directory (instructor versions
# with the hidden tests) in _build/course, and the slides; offline, prints how long it took
course: $(STAMP)
	$(PY) course/build.py --out _build/course --student course/student --slides book/_static/slides
	@touch $(SLIDES)

# tag a release: the badges, the launch buttons and the set-up cells point at tag v<version> (until
# then at the branch main, which exists; tests/book/test_course.py checks the ref exists)
RELEASE_TAG = v$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
release: $(STAMP)
	@test -z "$$(git status --porcelain)" || { echo "ERROR: commit your changes before make release" >&2; exit 1; }
	@! git rev-parse -q --verify "refs/tags/$(RELEASE_TAG)" > /dev/null || { echo "ERROR: $(RELEASE_TAG) is tagged already" >&2; exit 1; }
	sed -i 's/^  branch: .*/  branch: $(RELEASE_TAG)/' _config.yml
	$(PY) book/_stamp.py
	$(PY) course/build.py --out _build/course --student course/student
	git commit -q -am "Release $(RELEASE_TAG): badges and launch buttons point at the tag"
	git tag $(RELEASE_TAG)
	@echo "tagged $(RELEASE_TAG); push it with: git push origin main $(RELEASE_TAG)"

# fails loudly when the rendered book lacks the widget manager its pages load
define check_assets
	@for f in _build/html/_static/widgets/embed.js _build/html/_static/mathjax/tex-mml-chtml.js _build/html/_static/reveal.js/dist/reveal.js _build/html/_static/slides/01_few_shot.slides.html; do \
	  test -s $$f || { echo "ERROR: $$f is missing: the book's widgets or equations would not work offline (run make assets)" >&2; exit 1; }; done
endef

book: $(STAMP) $(ASSETS)
	$(PY) benchmarks/chapters.py --missing --write
	$(VENV)/bin/jupyter-book build --path-output . .
	$(check_assets)

# $(call fresh_data,COMMAND): run COMMAND from an empty data cache, as on a reader's first run: a new
# LGA_DATA_DIR, removed afterwards (also when COMMAND fails or is interrupted). An LGA_DATA_DIR set by
# the caller is used instead, and kept (e.g. `LGA_DATA_DIR=~/.cache/lga make nbval` to reuse a cache).
define fresh_data
	@if [ -n "$$LGA_DATA_DIR" ]; then \
	  echo "data cache: $$LGA_DATA_DIR (LGA_DATA_DIR, kept)"; $(1); \
	else \
	  data=$$(mktemp -d "$${TMPDIR:-/tmp}/lga-test.XXXXXX"); trap 'rm -rf "$$data"' EXIT; trap 'exit 130' INT TERM; \
	  echo "data cache: $$data (empty, removed afterwards)"; export LGA_DATA_DIR="$$data"; $(1); \
	fi
endef

# every test of tests/ runs once: `unit` the fast ones (pytest -m "not slow": minutes, for every change),
# `slow` the long end-to-end ones (marked @pytest.mark.slow: the gpu-check smoke run, the book in a
# browser, a fresh Colab-like environment, ...). `slow` comes after `html`, whose build of the book
# the tests that read the rendered HTML reuse (tests/book_build.py).
test: unit nbval html slow

unit: $(STAMP) $(ASSETS)
	$(call fresh_data,$(PY) -m pytest tests -m "not slow")

slow: $(STAMP) $(ASSETS) browser
	$(call fresh_data,$(PY) -m pytest tests -m slow)

# nbval in lax mode: every cell of every chapter runs and must not fail (the chapters' assertions
# check their results); only the outputs of cells marked `# NBVAL_CHECK_OUTPUT` are compared, after
# book/nbval_sanitize.cfg. The chapters are executed with 1 thread (benchmarks/chapters.py records it
# in each notebook) and checked with OMP_NUM_THREADS threads, 2 unless the caller sets it
# (tests/book/test_book_metadata.py checks this default differs from every chapter's recorded count).
# A failing claim always fails its cell here (LGA_BOOK_CLAIMS=report is for authors, lga.book).
nbval: export OMP_NUM_THREADS ?= 2
nbval: export LGA_BOOK_CLAIMS = raise
nbval: $(STAMP)
	@echo "nbval: OMP_NUM_THREADS=$$OMP_NUM_THREADS"
	$(call fresh_data,$(PY) -m pytest --nbval-lax book --nbval-sanitize-with book/nbval_sanitize.cfg -p no:cacheprovider)

html: $(STAMP) $(ASSETS)
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going --path-output . .
	$(check_assets)

# headless Chromium for tests/book/test_browser.py, installed from Debian when missing
browser:
	@command -v $(CHROMIUM) > /dev/null || { \
	  echo "installing $(CHROMIUM) (apt-get) for the browser test"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(CHROMIUM) > /dev/null; }
	@command -v $(CHROMIUM) > /dev/null || { echo "ERROR: $(CHROMIUM) is not installed; tests/book/test_browser.py needs it" >&2; exit 1; }

# every chapter's set-up cell = book/_setup_cell.py, and its Colab badge -> this release (see README)
stamp: $(STAMP)
	$(PY) book/_stamp.py

# re-execute every chapter for committing: in book order, from an empty data cache, 1 thread each;
# saves the outputs and each chapter's run time (the header's {{ run_time }}) into the notebooks
execute: $(STAMP)
	$(PY) benchmarks/chapters.py --write --fresh-cache

# retrain the cpu profile's tiny CLIP from scratch by its recipe (configs/tiny_clip/atomic_actions.yaml)
# on the default AtomicActions and rewrite the shipped one (lga/models/tiny_clip_weights: weights, train
# log, dataset config, sha256, retrieval figures); about an hour on 2 cores. Then `make execute`.
tiny-clip: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) -m lga tiny-clip

# the paper recipe end to end on one GPU (train + resume, eval over 10,000 episodes, 1- and 5-shot,
# torchrun, the transformers anatomy backend): prints peak memory, tasks/s and evaluation time, and
# writes them to GPU_CHECK_OUT; exits non-zero on any error. Chapter 8 shows the committed figures.
GPU_CHECK_OUT ?= benchmarks/results/gpu_check.json
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py --out $(GPU_CHECK_OUT)

# the unit tests on the oldest torch that pyproject.toml declares (tests/test_packaging.py checks the
# two agree), in a venv of their own with everything else pinned as in constraints.txt. PyPI's build of
# that torch is a download of a few GB, so this is run by authors (before a release, after raising a
# floor), not by CI. The fake-CUDA placement tests skip there: torch 2.6's fake tensors need a driver.
OLDEST_TORCH ?= torch==2.6.0 torchvision==0.21.0
OLDEST_VENV  ?= .venv-oldest
test-oldest-torch: $(ASSETS) browser
	@test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --upgrade --quiet pip "setuptools>=77"
	$(OLDEST_VENV)/bin/python -m pip install --quiet $(OLDEST_TORCH)
	grep -v -E '^(torch|torchvision)==' constraints.txt > $(OLDEST_VENV)/constraints-but-torch.txt
	$(OLDEST_VENV)/bin/python -m pip install --quiet -c $(OLDEST_VENV)/constraints-but-torch.txt -e ".[book,test]"
	$(OLDEST_VENV)/bin/python -m ipykernel install --prefix $(OLDEST_VENV) --name python3 > /dev/null
	$(OLDEST_VENV)/bin/python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	$(call fresh_data,$(OLDEST_VENV)/bin/python -m pytest tests -m "not slow")
	$(call fresh_data,$(OLDEST_VENV)/bin/python -m pytest tests -m slow)

clean:
	rm -rf _build book/_static/slides
