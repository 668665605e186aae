"""The library's layers run one way: a module imports only from its own layer or the layers below it
(the order is written in ``lga/__init__.py``), and no modules import each other in a circle.

Every ``import`` of every module of ``lga`` counts, including those inside functions (a function-local
import is a dependency all the same); only imports under ``if TYPE_CHECKING:`` are left out (never
run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LGA = ROOT / "lga"

#: the layers, lowest first: a module belongs to the layer of the longest prefix that names it; any
#: other top-level module ``lga/NAME.py`` is a low utility (it may import no other layer of lga)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("utilities", ("lga", "lga._lazy", "lga.util", "lga.yaml_io", "lga.reported")),
    ("data", ("lga.data",)),
    ("anatomy", ("lga.anatomy",)),
    ("config", ("lga.config",)),
    ("models", ("lga.optim", "lga.models")),
    ("engine", ("lga.engine",)),
    ("front", ("lga.viz", "lga.book", "lga.__main__", "lga.anatomy.cli", "lga.engine.cli")),
]

#: (importer, imported): upward imports known to exist, being fixed elsewhere. Empty this list as they go.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(LGA.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, rank = -1, 0
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports_of(module: str) -> set[str]:
    """The modules of lga that ``module`` imports (``from .x import y`` counts as ``x.y`` when ``y`` is a
    submodule, else as ``x``), anywhere in its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            targets = [f"{base_name}.{a.name}" if f"{base_name}.{a.name}" in MODULES else base_name
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES and "." in t:       # import lga.models.backbone.x -> the module
                t = t.rpartition(".")[0]
            if t in MODULES and t != module:
                out.add(t)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_layer_order_is_the_one_the_package_documents():
    doc = (LGA / "__init__.py").read_text()
    written = [name for name, _ in LAYERS]
    line = " < ".join(written)
    assert line in doc, f"lga/__init__.py should state the layer order: {line}"


def test_no_module_imports_from_a_higher_layer():
    upward = sorted((m, t) for m, targets in GRAPH.items() for t in targets
                    if layer_of(t) > layer_of(m) and (m, t) not in KNOWN_UPWARD)
    names = [name for name, _ in LAYERS]
    assert not upward, "imports from a higher layer:\n" + "\n".join(
        f"  {m} ({names[layer_of(m)]}) imports {t} ({names[layer_of(t)]})" for m, t in upward)


def test_known_upward_imports_still_exist():
    """An entry of the allow-list that no longer happens must leave it."""
    stale = sorted(e for e in KNOWN_UPWARD if e[1] not in GRAPH.get(e[0], ()))
    assert not stale, f"remove from KNOWN_UPWARD: {stale}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    cycles = _cycles({m: {t for t in ts if (m, t) not in KNOWN_UPWARD} for m, ts in GRAPH.items()})
    assert not cycles, "modules that import each other in a circle: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("graph, circles", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_circle_finder_finds_circles(graph, circles):
    assert _cycles(graph) == circles


def test_function_local_and_relative_imports_are_seen():
    """The parser sees what the test relies on: a function-local relative import of a submodule."""
    assert "lga.config.loading" in GRAPH["lga.config"]                 # a package's own submodules
    assert "lga.models.backbone" in GRAPH["lga.models.text_bank"]      # a function-local import
    assert "lga.config.components" in GRAPH["lga.config.validation"]
    assert "lga.config.ablations" in GRAPH["lga.models.lga"]


# ----------------------------------------------------------------------------- the moves of this layering
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
