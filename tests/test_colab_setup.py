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

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
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


def site_without_lga(dest: Path) -> Path:
    """A directory of links to every entry of this environment's site-packages except `lga`'s own."""
    dest.mkdir()
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        name = entry.name.lower()
        if name.startswith(("lga", "__editable__")) or name.endswith(".pth"):
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


def shipped_files() -> list[str]:
    """The files of the repository as a clone has them: tracked, or new and not ignored.

    (A file that .gitignore hides would be missing on Colab, so it must be missing here too.)
    """
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):          # not a git checkout: take the tree
        skip = {".git", ".venv", "_build", "build", "data", "__pycache__"}
        out = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
               if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    return sorted(f for f in out if f and (ROOT / f).is_file() and "__pycache__" not in f)


def shipped_copy(dest: Path) -> Path:
    for f in shipped_files():
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, dest / f)
    return dest


def colab_like_environment(tmp: Path) -> tuple[Path, dict]:
    """(kernel python, environment variables) of a fresh venv that can import everything but `lga`."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "test_environment.pth").write_text(str(site_without_lga(tmp / "site")) + "\n")
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
    }
    return python, env


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


def test_setup_cell_plan_installs_nothing_of_torch(tmp_path):
    """Where torch is already installed (Colab), the set-up cell's pip run installs `lga` and leaves torch
    and torchvision alone: its install step is run with pip's ``--dry-run --report`` (set through pip's
    own environment variables, so the cell is unchanged) and dependency resolution on, and the plan
    must name `lga` and no torch, torchvision or CUDA package."""
    python, env = colab_like_environment(tmp_path)
    install_part = SETUP_CELL.split('if "google.colab" in sys.modules:')[0]
    assert "pip" in install_part and "LGA_INSTALL_SOURCE" in install_part
    report = tmp_path / "plan.json"
    env = {**os.environ, **env, "PIP_DRY_RUN": "1", "PIP_REPORT": str(report), "PIP_QUIET": "1"}
    env.pop("PIP_NO_DEPS")                       # resolve the dependencies, as on Colab
    proc = subprocess.run([str(python), "-c", install_part + "\nprint(installed)"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = json.loads(report.read_text())["install"]
    names = sorted(item["metadata"]["name"].lower() for item in plan)
    assert "lga" in names, names
    assert not [n for n in names if n in ("torch", "torchvision", "triton") or n.startswith("nvidia")], names
    assert "kept torch==" in proc.stdout, proc.stdout
