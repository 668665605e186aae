"""The front door: ``lga`` and its sub-packages export the public API, lazily (PEP 562).

Every exported name resolves to the object of the module that defines it, is documented where the API
page shows it (the package docstring), clashes with no submodule, and ``import lga`` stays light.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["lga", "lga.data", "lga.anatomy", "lga.models", "lga.engine"]
HEAVY = ("torch", "numpy", "open_clip", "transformers", "matplotlib", "ipywidgets", "av", "PIL", "pandas")


def exports(package: str) -> dict[str, str]:
    """The exports mapping written in the package's ``__init__`` (read without importing it)."""
    path = ROOT.joinpath(*package.split("."), "__init__.py")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "attach":
            return ast.literal_eval(node.args[1])
    raise AssertionError(f"{path} exports nothing (no attach(__name__, {{...}}))")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return out.stdout.strip()


def test_import_lga_imports_nothing_heavy():
    loaded = _run("import sys, lga, lga.data, lga.anatomy, lga.models, lga.engine\n"
                  f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == "", f"import lga (and its sub-packages) imported {loaded}"


def test_evaluation_and_training_names_leave_optional_libraries_alone():
    """Reading ``lga.train`` or ``lga.evaluate_split`` imports torch, not the CLIP, LLM or plotting stacks."""
    loaded = _run("import sys, lga\nlga.load_config, lga.train, lga.evaluate_split, lga.EpisodeSampler, lga.LGA\n"
                  "print(' '.join(m for m in ('open_clip', 'transformers', 'matplotlib', 'ipywidgets') "
                  "if m in sys.modules))")
    assert loaded == ""
    assert _run("import sys, lga\nlga.load_config\nprint('torch' in sys.modules)") == "False"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves_to_its_defining_object(package):
    pkg = importlib.import_module(package)
    table = exports(package)
    assert pkg.__all__ == list(table) and len(set(pkg.__all__)) == len(pkg.__all__)
    for name, target in table.items():
        module, _, attr = target.partition(":")
        obj = getattr(pkg, name)
        assert obj is getattr(importlib.import_module(module), attr or name), f"{package}.{name}"
        assert name in dir(pkg)
    namespace: dict = {}
    exec(f"from {package} import *", namespace)
    assert set(table) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        pkg.no_such_name


@pytest.mark.parametrize("package", PACKAGES)
def test_no_exported_name_hides_a_submodule(package):
    """``lga.engine.train`` must stay the module: an export named like a submodule would be replaced by it
    (or replace it) depending on import order."""
    pkg = importlib.import_module(package)
    submodules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    assert not submodules & set(exports(package)), f"{package}: exports named like submodules"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_is_listed_in_the_package_docstring(package):
    """The API page shows the package docstrings (``automodule`` with ``:ignore-module-all:``), so each
    export must be listed there, pointing at its defining object (the cross-reference the book checks)."""
    pkg = importlib.import_module(package)
    prefix = "lga." if package == "lga" else ""
    for name, target in exports(package).items():
        module, _, attr = target.partition(":")
        assert f"{prefix}{name} <{module}.{attr or name}>`" in pkg.__doc__, f"{package}: document {name}"
    api = (ROOT / "book" / "api.md").read_text()
    assert f".. automodule:: {package}\n   :ignore-module-all:\n" in api


def test_submodules_are_attributes_and_old_paths_still_work():
    import lga
    assert inspect.ismodule(lga.engine) and inspect.ismodule(lga.engine.evaluate)
    from lga.engine import train as train_module
    from lga.engine.evaluate import evaluate_split
    assert inspect.ismodule(train_module) and lga.train is train_module.train
    assert lga.evaluate_split is evaluate_split is lga.engine.evaluate_split
