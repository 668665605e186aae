"""The set-up a newcomer relies on: dependencies, environment.yml, the book's structure and links."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_matches_pyproject():
    proj = pyproject()["project"]
    wanted = set(proj["dependencies"])
    for extra in ("book", "test"):
        wanted |= set(proj["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted, (f"only in pyproject.toml: {sorted(wanted - listed)}; "
                              f"only in environment.yml: {sorted(listed - wanted)}")
    assert "-e ." in pip


def test_dependencies_are_pinned_and_torch_is_the_local_build():
    deps = pyproject()["project"]["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps
    assert all("==" in d for d in deps), [d for d in deps if "==" not in d]
    book = pyproject()["project"]["optional-dependencies"]["book"]
    assert any(re.match(r"jupyter-book==1\.", d) for d in book), "Jupyter Book 1.x builds offline; 2.x cannot"


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
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


def test_setup_cells_install_from_the_configured_repository():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert f"git+{url}" in first.source, f"{path.name}: set-up cell does not install from {url}"
        assert 'select_profile("auto")' in first.source


@pytest.fixture(scope="module")
def built_html(tmp_path_factory):
    """The rendered book: _build/html when `make` built it, else a fresh build (no execution)."""
    html = ROOT / "_build" / "html"
    if (html / "index.html").is_file():
        return html
    out = tmp_path_factory.mktemp("book")
    subprocess.run([sys.executable, "-m", "jupyter_book", "build", "--path-output", str(out), str(ROOT)],
                   check=True, capture_output=True)
    return out / "_build" / "html"


def test_colab_launch_links_point_at_committed_notebooks(built_html):
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
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
