"""The set-up a newcomer relies on: dependencies, environment.yml, the book's structure and links."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from lga.yaml_io import load_yaml
from book_build import rendered_book

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def exact_pins(lines, where: str) -> dict[str, str]:
    """{canonical name: version} of requirement lines (comments, blanks and ``-e``/``-c`` lines
    skipped); every other line must be an exact pin."""
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==", f"{where}: {line!r} is not an exact pin (==)"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{where} pins {req.name} twice"
        pins[name] = spec[0].version
    return pins


def constraints() -> dict[str, str]:
    return exact_pins((ROOT / "constraints.txt").read_text().splitlines(), "constraints.txt")


def project_requirements() -> list[tuple[str, Requirement]]:
    """(where, requirement) for the dependencies and every optional dependency of pyproject.toml."""
    proj = pyproject()["project"]
    reqs = [("dependencies", Requirement(d)) for d in proj["dependencies"]]
    reqs += [(f"[{extra}]", Requirement(d)) for extra, deps in proj.get("optional-dependencies", {}).items()
             for d in deps]
    return reqs


def test_every_dependency_is_pinned_in_constraints_inside_its_range():
    pins = constraints()
    for where, req in project_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"pyproject.toml {where} {req} has no pin in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject.toml's {where} {req}"


def test_dependencies_are_ranges_and_ci_pins_the_local_torch():
    for d in pyproject()["project"]["dependencies"]:
        ops = {s.operator for s in Requirement(d).specifier}
        assert "==" not in ops and "===" not in ops, f"pyproject.toml pins {d}: declare a range, pin in constraints.txt"
        assert ops & {">=", "~=", ">"}, f"pyproject.toml: {d} needs a lower bound (the oldest version that works)"
    pins = constraints()
    # torch/torchvision: the releases that pip finds on the CI machine's local disk
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    book = [Requirement(d) for d in pyproject()["project"]["optional-dependencies"]["book"]]
    jb = next(r for r in book if canonicalize_name(r.name) == "jupyter-book")
    assert not jb.specifier.contains("2.0.0") and pins["jupyter-book"].startswith("1."), \
        "Jupyter Book 1.x builds offline; 2.x cannot"


def test_environment_yml_lists_exactly_the_constraints():
    env = load_yaml(ROOT / "environment.yml")
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed, pins = exact_pins(pip, "environment.yml"), constraints()
    assert listed == pins, (f"environment.yml and constraints.txt differ: only in environment.yml "
                            f"{sorted(set(listed.items()) - set(pins.items()))}; only in constraints.txt "
                            f"{sorted(set(pins.items()) - set(listed.items()))}")
    assert "-e ." in pip


def test_make_installs_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(STAMP\):.*\bconstraints\.txt\b", makefile, flags=re.M), \
        "the install stamp must depend on constraints.txt (a changed pin reinstalls)"
    assert re.search(r"pip install .*-c constraints\.txt -e \"\.\[book,test\]\"", makefile), \
        "make must install with the pins: pip install -c constraints.txt -e \".[book,test]\""


def test_make_test_runs_every_unit_test_once():
    """``make test`` runs the fast unit tests (``make unit``: not marked slow) and the slow ones
    (``make slow``), so no test is left out and none runs twice; pytest refuses a marker it does not
    know, so a mistyped ``@pytest.mark.slow`` cannot silently move a test into the fast set's place."""
    makefile = (ROOT / "Makefile").read_text()
    test = re.search(r"^test:(.*)$", makefile, flags=re.M)
    assert test and {"unit", "slow"} <= set(test.group(1).split()), "make test must depend on unit and slow"
    recipes = {}
    for target in ("unit", "slow"):
        found = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
        assert found, f"the Makefile has no recipe for {target}"
        recipes[target] = found.group(1)
    assert re.search(r"-m pytest tests -m \"not slow\"", recipes["unit"]), recipes["unit"]
    assert re.search(r"-m pytest tests -m slow\b", recipes["slow"]), recipes["slow"]
    options = pyproject()["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in options["addopts"].split()
    assert any(m.startswith("slow:") for m in options["markers"]), options.get("markers")


def test_the_oldest_torch_tested_is_the_floor_pyproject_declares():
    """``make test-oldest-torch`` installs exactly the lower bounds of torch and torchvision, so the
    floor a reader's Colab is held to is the one the unit tests ran on."""
    oldest = re.search(r"^OLDEST_TORCH \?= (.+)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert oldest, "the Makefile must name OLDEST_TORCH for make test-oldest-torch"
    tested = {k: Version(v) for k, v in exact_pins(oldest.group(1).split(), "Makefile OLDEST_TORCH").items()}
    floors = {}
    for d in pyproject()["project"]["dependencies"]:
        req = Requirement(d)
        if canonicalize_name(req.name) in ("torch", "torchvision"):
            floors[canonicalize_name(req.name)] = Version(next(s.version for s in req.specifier if s.operator == ">="))
    assert tested == floors, f"make test-oldest-torch installs {tested}; pyproject.toml's floors are {floors}"


def toc_files():
    toc = load_yaml(ROOT / "_toc.yml")
    return [toc["root"]] + [c["file"] for c in toc["chapters"]]


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    for f in toc_files():
        assert any((ROOT / f"{f}{ext}").is_file() for ext in (".md", ".ipynb")), f
    notebooks = {str(p.relative_to(ROOT).with_suffix("")) for p in (ROOT / "book").glob("*.ipynb")}
    assert notebooks <= set(toc_files()), f"chapters missing from _toc.yml: {notebooks - set(toc_files())}"


def test_chapters_are_committed_executed_without_errors():
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.execution_count is not None for c in code), f"{path.name} is not executed"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{path.name} has error outputs"
        # keys for LLM services must never be committed in outputs
        text = path.read_text()
        assert not re.search(r"sk-[A-Za-z0-9]{20,}", text), f"{path.name} contains what looks like an API key"


def config():
    return load_yaml(ROOT / "_config.yml")


def chapters():
    return sorted((ROOT / "book").glob("*.ipynb"))


SETUP_CELL = (ROOT / "book" / "_setup_cell.py").read_text().rstrip("\n")


def test_setup_cell_installs_the_release_of_the_configured_repository():
    """One repository URL (_config.yml), one release: "v" + the package version, everywhere; the badges
    point at that tag once it exists (`make release`), at the branch main before."""
    repo = config()["repository"]
    release = f"v{pyproject()['project']['version']}"
    assert repo["branch"] in (release, "main"), (
        f"_config.yml repository.branch is {repo['branch']!r}; the book documents release {release!r} "
        "(pyproject.toml): `main` until it is tagged, then the tag (`make release`)")
    found = re.search(r'^REPOSITORY, RELEASE = "([^"]+)", "([^"]+)"$', SETUP_CELL, flags=re.M)
    assert found, "book/_setup_cell.py must set REPOSITORY, RELEASE on one line"
    assert found.groups() == (repo["url"], release), (
        f"book/_setup_cell.py installs {found.groups()}, _config.yml/pyproject.toml say {(repo['url'], release)}")
    assert 'f"git+{REPOSITORY}@{RELEASE if tag else \'main\'}"' in SETUP_CELL
    # pip is told to keep the torch it finds (a constraints file of the installed versions)
    assert '"-c", pins' in SETUP_CELL and '("torch", "torchvision")' in SETUP_CELL
    # the one visible line a reader changes to pick a profile
    assert re.search(r'^profile = select_profile\("auto"\)', SETUP_CELL, flags=re.M)
    # the hooks tests/book/test_colab_setup.py uses to run the cell as Colab does
    assert 'os.environ.get("LGA_FORCE_COLAB") == "1"' in SETUP_CELL and '"LGA_INSTALL_SOURCE"' in SETUP_CELL


def test_every_chapter_starts_with_the_set_up_cell():
    for path in chapters():
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source == SETUP_CELL, (f"{path.name}: its first code cell is not book/_setup_cell.py; "
                                            "run `make stamp`")
        assert first.metadata.get("tags") == ["hide-input"], (
            f"{path.name}: the set-up cell must be tagged hide-input (folded code, one visible line); "
            "run `make stamp`")
        assert max(map(len, SETUP_CELL.splitlines())) <= 100, "set-up cell lines overflow the page"


def test_every_chapter_has_a_header_with_a_local_colab_badge():
    sys.path.insert(0, str(ROOT / "book"))
    try:
        from _stamp import badge
    finally:
        sys.path.remove(str(ROOT / "book"))
    for path in chapters():
        nb = nbformat.read(path, as_version=4)
        header = nb.cells[0]
        assert header.cell_type == "markdown" and header.source.startswith("# "), \
            f"{path.name}: the first cell must be the header, starting with the chapter's '# ' title"
        assert badge(path) in header.source, f"{path.name}: header lacks the badge {badge(path)} (`make stamp`)"
        for needed in ("What you will learn", "Prerequisites", "Run time", "CPU", "GPU"):
            assert needed in header.source, f"{path.name}: the header does not mention {needed!r}"
    svg = (ROOT / "book" / "_static" / "colab-badge.svg").read_text()
    assert svg.lstrip().startswith("<svg") and "Open in Colab" in svg
    assert not re.search(r"(href|src)=\"https?:", svg), "the badge must not load anything from the network"


EXERCISE = re.compile(r"^## Exercises\s*$(.*?)(?=^## |\Z)", flags=re.M | re.S)


def test_every_chapter_ends_with_two_to_four_exercises_with_hidden_solutions():
    for path in chapters():
        nb = nbformat.read(path, as_version=4)
        start = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                      and re.search(r"^## Exercises\s*$", c.source, flags=re.M)), None)
        assert start is not None, f"{path.name}: no '## Exercises' section"
        end = next((i for i, c in enumerate(nb.cells) if i > start and c.cell_type == "markdown"
                    and re.search(r"^## (?!Exercises)", c.source, flags=re.M)), len(nb.cells))
        cells = nb.cells[start:end]
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        exercises = re.findall(r"^(\d+)\. ", EXERCISE.search(text).group(1).split(":::")[0], flags=re.M)
        assert 2 <= len(exercises) <= 4, f"{path.name}: {len(exercises)} exercises, want 2 to 4"
        for n in exercises:
            assert re.search(rf"^:::{{admonition}} Solution {n}\n:class: dropdown$", text, flags=re.M), \
                f"{path.name}: exercise {n} has no hidden solution (a ':::{{admonition}} Solution {n}' " \
                "block with ':class: dropdown')"
        # solution code cells: tagged, hidden until opened, and only there
        for c in cells:
            if c.cell_type == "code":
                tags = set(c.metadata.get("tags", []))
                assert "solution" in tags and tags & {"hide-cell", "hide-input"}, \
                    f"{path.name}: solution cell not tagged 'solution' + 'hide-cell': {c.source[:60]!r}"
        outside = [c for i, c in enumerate(nb.cells) if not start <= i < end
                   and "solution" in c.metadata.get("tags", [])]
        assert not outside, f"{path.name}: cells tagged 'solution' outside the exercises"


def test_api_reference_documents_every_module():
    api = (ROOT / "book" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: ([\w.]+)$", api, flags=re.M))
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "lga").rglob("*.py")} - {"lga.__main__"}
    assert modules <= documented, f"add to book/api.md: {sorted(modules - documented)}"
    assert documented <= modules, f"book/api.md documents missing modules: {sorted(documented - modules)}"


def test_every_citation_is_in_the_bibliography():
    bib = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), flags=re.M))
    texts = [p.read_text() for p in (ROOT / "book").glob("*.md")]
    texts += ["\n".join(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "markdown")
              for p in chapters()]
    cited = {k.strip() for t in texts for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", t)
             for k in keys.split(",")}
    assert cited <= bib, f"cited but not in book/references.bib: {sorted(cited - bib)}"
    assert ":all:" in (ROOT / "book" / "bibliography.md").read_text()


@pytest.fixture(scope="module")
def built_html():
    """The rendered book (built first when missing or older than its sources; see book_build.py)."""
    return rendered_book()


@pytest.mark.slow          # reads the rendered book (built first unless `make html` just did)
def test_colab_launch_links_point_at_committed_notebooks(built_html):
    cfg = load_yaml(ROOT / "_config.yml")
    repo = cfg["repository"]["url"].removeprefix("https://github.com/")
    branch = cfg["repository"]["branch"]
    pattern = re.compile(rf"https://colab\.research\.google\.com/github/{re.escape(repo)}/blob/"
                         rf"{re.escape(branch)}/([^\"'#?]+\.ipynb)")
    found = {}
    for page in built_html.glob("book/*.html"):
        for target in pattern.findall(page.read_text()):
            found[page.name] = target
    chapters = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))
    assert sorted(Path(t).stem for t in found.values()) == chapters, found
    for page, target in found.items():
        assert (ROOT / target).is_file(), f"{page}: Colab link to missing notebook {target}"


@pytest.mark.slow          # reads the rendered book (built first unless `make html` just did)
def test_the_html_loads_nothing_from_the_network(built_html):
    """Scripts, styles, fonts and images of every page come from the book itself (it works offline)."""
    tags = re.compile(r"<(script|img|link)\b([^>]*)>")
    problems = []
    for page in built_html.rglob("*.html"):
        if "_static" in page.parts:
            continue
        for name, attrs in tags.findall(page.read_text()):
            url = re.search(r"\b(?:src|href)=\"(https?://[^\"]+)\"", attrs)
            loads = name != "link" or re.search(r"\brel=\"(?:stylesheet|preload|icon|modulepreload)\"", attrs)
            if url and loads:
                problems.append(f"{page.relative_to(built_html)}: <{name}> loads {url.group(1)}")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.slow          # reads the rendered book (built first unless `make html` just did)
def test_the_set_up_cell_is_folded_in_the_html_with_one_visible_line(built_html):
    """On every chapter's page the set-up cell's code is folded (``hide-input``) and its output, shown,
    is one line saying what was installed and which profile runs: nothing overflows sideways."""
    for path in chapters():
        html = (built_html / "book" / f"{path.stem}.html").read_text()
        start = html.find('<div class="cell ')
        assert start >= 0, f"{path.stem}.html has no code cell"
        opening = html[start:html.find(">", start)]
        assert "tag_hide-input" in opening, f"{path.stem}.html: the first cell is not hide-input: {opening}"
        details, source = html.find("<details", start), html.find("cell_input", start)
        closed, output = html.find("</details>", start), html.find("cell_output", start)
        assert -1 < details < source < closed < output, \
            f"{path.stem}.html: the set-up cell's code is not inside a folded <details> before its output"
        assert "hide above-input" in html[details:source], f"{path.stem}.html: the fold is not myst-nb's hide-input"
        pre = re.search(r"<pre>(.*?)</pre>", html[output:], flags=re.S)
        text = re.sub(r"<[^>]+>", "", pre.group(1))
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert len(lines) == 1 and "profile:" in lines[0] and len(lines[0]) <= 100, \
            f"{path.stem}.html: the set-up cell shows {lines!r}, not one short line naming the profile"
