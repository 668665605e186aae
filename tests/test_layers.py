"""The layers of ``lga`` import one way: ``lga.util`` imports nothing of lga, ``lga.data`` nothing above
it, and the anatomy backends build on a base module instead of importing the factory that imports them.
Every import counts, function-local ones too (read from the source, so a lazy import cannot hide)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LGA = Path(__file__).resolve().parents[1] / "lga"


def _imports(path: Path) -> set[str]:
    """The absolute module names that ``path`` imports (relative imports resolved), anywhere in it."""
    parts = list(path.relative_to(LGA.parent).with_suffix("").parts)
    package = parts if parts[-1] == "__init__" else parts[:-1]
    package = [p for p in package if p != "__init__"]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out |= {f"{module}.{a.name}" for a in node.names} | {module}
    return out


def _offending(folder: str, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for path in sorted((LGA / folder).glob("*.py")):
        names = sorted(m for m in _imports(path)
                       if m.startswith("lga.") and m != "lga.__version__"     # the package's version: allowed
                       and not any(m == a or m.startswith(a + ".") for a in allowed))
        if names:
            bad[path.name] = names
    return bad


def test_util_imports_nothing_of_lga():
    assert _offending("util", allowed=("lga.util",)) == {}


def test_data_imports_nothing_above_it():
    """No lga.anatomy, lga.models, lga.engine, lga.config or lga.viz, not even function-local."""
    assert _offending("data", allowed=("lga.data", "lga.util", "lga._lazy")) == {}


@pytest.mark.parametrize("backend", ["openai_backend.py", "transformers_backend.py"])
def test_llm_backends_do_not_import_the_factory(backend):
    assert "lga.anatomy.backends" not in _imports(LGA / "anatomy" / backend)


def test_moved_helpers_stay_importable_from_their_old_modules():
    from lga import util
    from lga.anatomy import backend_base, backends, visual
    from lga.data import layout, manifest, phase_metrics, prepare, splits
    from lga.engine import checkpoint

    assert layout.atomic_write_text is util.atomic_write_text and layout.write_json is util.write_json
    assert layout.DiskFullError is util.DiskFullError and layout.atomic_path is util.atomic_path
    assert prepare.die_with_parent is util.die_with_parent
    assert manifest.file_sha256 is splits.sha256_file is checkpoint.file_hash is util.file_sha256
    assert backends.AnatomyBackend is backend_base.AnatomyBackend
    assert backends.BackendError is backend_base.BackendError
    assert visual.phase_accuracy is phase_metrics.phase_accuracy
    assert visual.uniform_segment is phase_metrics.uniform_segment
