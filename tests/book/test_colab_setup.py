"""The chapters' set-up cell, run as Colab runs it: in a fresh kernel of a fresh environment without `lga`.

Every chapter's first code cell is the text of ``book/_setup_cell.py`` (tests/test_packaging.py checks
that). Here each distinct set-up cell found in the chapters is executed in a new Jupyter kernel with

- ``LGA_FORCE_COLAB=1``: the cell takes its Colab branch and installs `lga` because it is missing;
- ``LGA_INSTALL_SOURCE=<a copy of this checkout>``: it installs the local code instead of the release
  from GitHub (the only difference from Colab; pip runs offline, without dependencies);
- a temporary virtual environment that sees every package of the test environment (torch, ipykernel,
  ...) except `lga` itself, so the install really happens and `.venv` is never touched.

Then the cell is run a second time in the same kernel, where it must do nothing.
"""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from test_packaging import constraints, pyproject

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


SETUP_CELL = (ROOT / "book" / "_setup_cell.py").read_text().rstrip("\n")


def setup_cells():
    """{set-up cell source: [where it is used]}: the canonical cell and every chapter's first code cell."""
    found = {SETUP_CELL: ["_setup_cell.py"]}
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        found.setdefault(first.source, []).append(path.name)
    return found


def site_without_lga(dest: Path, versions: dict[str, str] | None = None) -> Path:
    """A directory of links to every entry of this environment's site-packages except `lga`'s own.

    ``versions`` ({distribution: version}) makes pip and ``importlib.metadata`` see those
    distributions at those versions (their real ``.dist-info`` is left out and a metadata-only one
    written instead; the code is still this environment's): Colab's torch, which is not CI's.
    """
    dest.mkdir()
    versions = versions or {}
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        name = entry.name.lower()
        if name.startswith(("lga", "__editable__")) or name.endswith(".pth"):
            continue
        if name.endswith(".dist-info") and canonicalize_name(name.split("-")[0]) in versions:
            continue
        (dest / entry.name).symlink_to(entry)
    for dist, version in versions.items():
        info = dest / f"{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    return dest


def shipped_files() -> list[str]:
    """The files of the repository as a clone has them: tracked, or new and not ignored.

    (A file that .gitignore hides would be missing on Colab, so it must be missing here too.)
    """
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):          # not a git checkout: take the tree
        # top-level folders of local state only: lga/data and lga/anatomy/data are the package's
        skip = {".git", ".venv", "_build", "build", "data"}
        out = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
               if p.is_file() and p.relative_to(ROOT).parts[0] not in skip]
    return sorted(f for f in out if f and (ROOT / f).is_file() and "__pycache__" not in f)


def shipped_copy(dest: Path) -> Path:
    for f in shipped_files():
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, dest / f)
    return dest


def colab_like_environment(tmp: Path, versions: dict[str, str] | None = None) -> tuple[Path, dict]:
    """(kernel python, environment variables) of a fresh venv that can import everything but `lga`
    (with the distributions of ``versions`` seen at those versions, :func:`site_without_lga`)."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "test_environment.pth").write_text(str(site_without_lga(tmp / "site", versions)) + "\n")
    src = shipped_copy(tmp / "checkout")
    env = {
        "LGA_FORCE_COLAB": "1",
        "LGA_INSTALL_SOURCE": str(src),
        # offline: the test environment already holds the dependencies and the build backend
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "LGA_PROFILE": "",
        "PYTHONPATH": "",       # a Colab kernel cannot import the checkout the tests run from
    }
    return python, env


@pytest.mark.slow          # pip installs lga into a fresh environment, then a kernel imports every module
@pytest.mark.parametrize("source", list(setup_cells()), ids=lambda s: "+".join(setup_cells()[s]))
def test_setup_cell_installs_lga_in_a_fresh_colab_like_kernel(source, tmp_path):
    python, env = colab_like_environment(tmp_path)
    kernels = tmp_path / "jupyter" / "kernels" / "colab-like"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python", "env": env}))
    workdir = tmp_path / "work"          # not the checkout: `import lga` must not find ./lga
    workdir.mkdir()
    # every module of the installed package imports, and the package data came along
    check = ("import importlib, pkgutil, sys, lga\n"
             "from importlib.resources import files\n"
             "print('lga from', lga.__file__)\n"
             "mods = sorted(m.name for m in pkgutil.walk_packages(lga.__path__, 'lga.'))\n"
             "for m in mods:\n"
             "    importlib.import_module(m)\n"
             "print('modules:', ' '.join(mods))\n"
             "data = sorted(p.name for p in files('lga.anatomy').joinpath('data').iterdir())\n"
             "print('anatomy data:', ' '.join(data))")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source), nbformat.v4.new_code_cell(check),
                                         nbformat.v4.new_code_cell(source)])
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(tmp_path / "jupyter")
    try:
        NotebookClient(nb, kernel_name="colab-like", timeout=300,
                       resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH")
        else:
            os.environ["JUPYTER_PATH"] = old

    def text(cell):
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    first, where, again = (text(c) for c in nb.cells)
    assert f"installed lga from {tmp_path / 'checkout'}" in first, first
    assert "profile: cpu" in first and len(first.strip().splitlines()) == 1, f"one line of output:\n{first}"
    assert "kept torch==" in first, first
    assert str(tmp_path / "venv") in where, f"lga was not imported from the fresh environment:\n{where}"
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "lga").rglob("*.py")} - {"lga", "lga.__main__"}
    installed = set(where.split("modules:")[1].split("\n")[0].split())
    assert modules <= installed, f"modules missing from the installed package: {sorted(modules - installed)}"
    shipped = {p.name for p in (ROOT / "lga" / "anatomy" / "data").glob("*.json")}
    assert shipped and shipped <= set(where.split("anatomy data:")[1].split()), where
    assert "installed" not in again and "profile: cpu" in again, f"second run was not a no-op:\n{again}"


def install_plan(python: Path, env: dict, tmp: Path, cell: str = SETUP_CELL) -> tuple:
    """(the process, pip's plan) of the install part of the set-up cell ``cell`` run in the Colab-like
    ``python`` with ``env``, pip in ``--dry-run --report`` mode (through its own environment variables,
    so the cell is unchanged); the process prints the cell's ``installed`` message."""
    install_part = cell.split('if "google.colab" in sys.modules:')[0]
    assert "pip" in install_part and "LGA_INSTALL_SOURCE" in install_part
    report = tmp / "plan.json"
    env = {**os.environ, **env, "PIP_DRY_RUN": "1", "PIP_REPORT": str(report), "PIP_QUIET": "1"}
    proc = subprocess.run([str(python), "-c", install_part + "\nprint(installed)"], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(report.read_text())["install"]


@pytest.mark.parametrize("tagged", [False, True])
def test_setup_cell_installs_the_release_or_main_before_it_is_tagged(tagged, tmp_path):
    """Without LGA_INSTALL_SOURCE the cell installs the page's release tag from the repository, or its
    branch ``main`` while that tag does not exist yet, and says which. The repository here is a git
    repository of this checkout (the cell's URL replaced by its ``file://`` URL), with or without the tag."""
    python, env = colab_like_environment(tmp_path)
    repo = Path(env.pop("LGA_INSTALL_SOURCE"))                   # the shipped copy, made a repository
    found = re.search(r'^REPOSITORY, RELEASE = "([^"]+)", "([^"]+)"$', SETUP_CELL, flags=re.M)
    assert found, "book/_setup_cell.py must set REPOSITORY, RELEASE on one line"
    url, release = found.group(1), found.group(2)
    git = ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "release candidate"]) + (
            (["tag", release],) if tagged else ()):
        subprocess.run(git + args, check=True, capture_output=True)
    cell = SETUP_CELL.replace(f'"{url}"', f'"{repo.as_uri()}"', 1)
    assert cell != SETUP_CELL
    proc, plan = install_plan(python, env, tmp_path, cell)
    ref = release if tagged else "main"
    assert f"installed lga from git+{repo.as_uri()}@{ref} (kept torch==" in proc.stdout, proc.stdout
    [lga] = [item for item in plan if item["metadata"]["name"].lower() == "lga"]
    assert lga["download_info"]["vcs_info"]["requested_revision"] == ref, lga["download_info"]


def oldest_declared(dist: str) -> str:
    """The lower bound pyproject.toml declares for ``dist`` (``torch>=2.6`` -> ``2.6``)."""
    req = next(Requirement(d) for d in pyproject()["project"]["dependencies"]
               if canonicalize_name(Requirement(d).name) == dist)
    bounds = [s.version for s in req.specifier if s.operator in (">=", "~=", "==")]
    assert len(bounds) == 1, f"pyproject.toml: {req} has no single lower bound"
    return bounds[0]


@pytest.mark.parametrize("colab", ["ci", "oldest"])
def test_setup_cell_plan_installs_nothing_of_torch(colab, tmp_path):
    """Where torch is already installed (Colab), the set-up cell's pip run installs `lga` and leaves torch
    and torchvision alone: its install step is run with pip's ``--dry-run --report`` (set through pip's
    own environment variables, so the cell is unchanged) and dependency resolution on, and the plan
    must name `lga` and no torch, torchvision or CUDA package.

    Colab's torch is either CI's (constraints.txt) or, as on a Colab that is not CI, another one: the
    oldest that pyproject.toml declares, which must be older than CI's (an exact pin, the bug of
    issue 12, makes the two the same). pip runs offline, so a plan that needs another torch fails to
    resolve and the cell raises."""
    pins = constraints()
    torch_versions = None
    if colab == "oldest":
        torch_versions = {d: oldest_declared(d) for d in ("torch", "torchvision")}
        for d, v in torch_versions.items():
            assert Version(v) < Version(pins[d]), (
                f"pyproject.toml accepts no {d} older than CI's {pins[d]}: Colab's would be replaced")
    python, env = colab_like_environment(tmp_path, torch_versions)
    expected = torch_versions or {d: importlib.metadata.version(d) for d in ("torch", "torchvision")}
    env.pop("PIP_NO_DEPS")                       # resolve the dependencies, as on Colab
    proc, plan = install_plan(python, env, tmp_path)
    names = sorted(item["metadata"]["name"].lower() for item in plan)
    assert "lga" in names, names
    assert not [n for n in names if n in ("torch", "torchvision", "triton") or n.startswith("nvidia")], names
    kept = ", ".join(f"{d}=={v}" for d, v in expected.items())
    assert f"(kept {kept})" in proc.stdout, proc.stdout
