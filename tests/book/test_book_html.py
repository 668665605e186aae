"""HTML that chapters build from data goes through an escaping helper.

Two checks: every chapter's code is scanned for HTML put together from values that no helper
escapes (an f-string, ``+``, ``%`` or ``.format`` around markup), and the widget cells of the
chapters that show anatomy are run, as written in the notebook, on a hostile anatomy whose labels
and class names are markup: the HTML of every widget they build is parsed and holds no tag from
the data.
"""

from __future__ import annotations

import ast
import html.parser
import re
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

BOOK = Path(__file__).resolve().parents[2] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
HOSTILE = "<img src=x onerror=alert(1)>"
_HTML_TAGS = ("a|abbr|b|big|blockquote|br|caption|center|code|del|details|div|em|font|h[1-6]|hr|i|iframe|img"
              "|ins|kbd|li|mark|ol|p|pre|q|s|samp|script|small|span|strong|style|sub|summary|sup|svg"
              "|table|tbody|td|tfoot|th|thead|tr|tt|u|ul|var")
_TAG = re.compile(rf"<\s*/?\s*(?:{_HTML_TAGS})\b[^<>]*>", re.I)  # HTML, not an LLM's <think>
_ESCAPERS = {"escape", "html_format"}  # html.escape, lga.viz.html_format


# ----------------------------------------------------------------------------------------------
# the scan


def _code(source: str) -> str:
    """A cell's source with IPython magics and shell lines blanked (kept as Python)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _has_tag(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(_TAG.search(node.value))


def _escaped(node: ast.AST) -> bool:
    """Whether ``node`` is a call to an escaping helper, or a constant."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in _ESCAPERS
    return False


def unescaped_html(source: str) -> list[str]:
    """Places in ``source`` where markup is joined with a value that no helper escaped."""
    found = []
    for node in ast.walk(ast.parse(_code(source))):
        if isinstance(node, ast.JoinedStr) and any(_has_tag(v) for v in node.values):
            for value in node.values:
                if isinstance(value, ast.FormattedValue) and not _escaped(value.value):
                    found.append(f"line {node.lineno}: f-string markup with {{{ast.unparse(value.value)}}}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            sides = (node.left, node.right)
            if any(_has_tag(s) for s in sides) and not all(_escaped(s) for s in sides):
                found.append(f"line {node.lineno}: markup joined with {ast.unparse(node)[:80]}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "format" and _has_tag(node.func.value)):
            found.append(f"line {node.lineno}: str.format on markup (use lga.viz.html_format)")
    return found


def test_the_scan_finds_each_way_of_building_html_from_data():
    for bad in ('f"<b>{name}</b>"', '"<b>" + name + "</b>"', '"<i>%s</i>" % name',
                '"<b>{}</b>".format(name)', 'f"(label: <i>{shipped[ds][n].label}</i>)"'):
        assert unescaped_html(bad), bad
    for good in ('html_format("<b>{}</b>", name)', 'viz.html_format("<i>{}</i>", x)',
                 'f"<b>{html.escape(name)}</b>"', '"<b>title</b>"', 'f"{a} and {b}"',
                 '"<b>" + "</b>"', '"a < b" + name', '"<think>x</think>" + answer'):
        assert not unescaped_html(good), good


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_build_html_only_through_escaping_helpers(path):
    nb = nbformat.read(path, as_version=4)
    found = [f"cell {i}, {where}" for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             for where in unescaped_html(cell.source)]
    assert not found, f"{path.name}: HTML built from unescaped data (use lga.viz.html_format): {found}"


# ----------------------------------------------------------------------------------------------
# the widgets of the anatomy chapters, on a hostile anatomy


class _Parser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def widget_html(widget) -> list[str]:
    """The ``value`` of every ``ipywidgets.HTML`` in a widget tree."""
    import ipywidgets as W

    out = [widget.value] if isinstance(widget, W.HTML) else []
    for child in getattr(widget, "children", ()):
        out += widget_html(child)
    return out


def cell_calling(path: Path, name: str) -> str:
    nb = nbformat.read(path, as_version=4)
    (source,) = [c.source for c in nb.cells if c.cell_type == "code" and f"{name}(" in c.source]
    return source


def run_cell(source: str, namespace: dict):
    """Run a cell's code in ``namespace``; return the value of its last expression (as Jupyter shows)."""
    tree = ast.parse(_code(source))
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 - the book's own code
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace) if last else None


def _steps(text: str) -> list:
    from lga.anatomy.parse import Step

    return [Step(text, text, text, f"{text} {i}") for i in range(3)]


def chapter_02_namespace() -> dict:
    from lga import viz

    steps = [s.to_dict() for s in _steps(HOSTILE)]
    classes = [types.SimpleNamespace(split="test", name=f"{HOSTILE} {i}", label=HOSTILE, class_dir=f"c{i}",
                                     partner=HOSTILE if i else None, pair_kind=HOSTILE,
                                     steps=lambda: steps) for i in range(2)]
    keys = [f"c{i}/c{i}_{v:03d}" for i in range(2) for v in range(2)]
    return {"np": np, "viz": viz, "classes": classes, "root": Path("unused"),
            "find_video": lambda root, key: key,
            "read_video": lambda path, n, return_indices: (np.zeros((n, 8, 8, 3), np.uint8), np.arange(n)),
            "anatomy": {"videos": {k: {"phase_bounds": [0, 2, 5, 8]} for k in keys}}}


def chapter_04_namespace() -> dict:
    entry = types.SimpleNamespace(steps=_steps(HOSTILE), label=HOSTILE + " label")
    names = [HOSTILE, "<script>alert(2)</script>"]
    return {"DATASETS": ["hostile"],
            "splits": {"hostile": {"test": [types.SimpleNamespace(class_name=n) for n in names]}},
            "shipped": {"hostile": {n: entry for n in names}}}


def chapter_05_namespace() -> dict:
    from lga import viz
    from lga.anatomy import visual
    from lga.viz import phases

    V, T = 24, 8
    labels = torch.arange(V) % 12
    bounds = torch.tensor([[0, 2, 5, T]] * V)
    return {"np": np, "viz": viz, "visual": visual, "phase_viz": phases,
            "test_labels": labels, "test_keys": [f"{HOSTILE}_{v}" for v in range(V)],
            "test_clips": np.zeros((V, T, 8, 8, 3), np.uint8), "gt": bounds,
            "methods": {"ground truth": bounds, HOSTILE: bounds + torch.tensor([0, 1, 0, 0])},
            "names": [f"{HOSTILE} class {c}" for c in range(12)]}


WIDGET_CELLS = {"02_data": ("class_browser", chapter_02_namespace),
                "04_text_anatomy": ("anatomy_browser", chapter_04_namespace),
                "05_visual_anatomy": ("phase_explorer", chapter_05_namespace)}


@pytest.mark.parametrize("chapter", list(WIDGET_CELLS))
def test_chapter_widgets_show_a_hostile_anatomy_as_text(chapter):
    call, namespace = WIDGET_CELLS[chapter]
    widget = run_cell(cell_calling(BOOK / f"{chapter}.ipynb", call), namespace())
    pages = widget_html(widget)
    assert pages, f"{chapter}: the cell calling {call} built no HTML widget"
    for page in pages:
        parser = _Parser()
        parser.feed(page)
        parser.close()
        live = [t for t in parser.tags if t in ("img", "script")]
        assert not live, f"{chapter}: a tag from the data is live in {page[:300]!r}"
    shown = "".join("".join(p for p in pages))
    assert HOSTILE.replace("<", "&lt;").replace(">", "&gt;") in shown  # shown, as text


def test_html_format_escapes_values_not_the_template():
    from lga.viz import anatomy_html, html_format

    assert html_format("<b>{}</b> {:.1f} {x}", HOSTILE, 0.25, x="a&b") == \
        "<b>&lt;img src=x onerror=alert(1)&gt;</b> 0.2 a&amp;b"
    with pytest.raises(ValueError, match="plain fields"):
        html_format("{0.__class__}", 1)
    page = anatomy_html(HOSTILE, [s.to_dict() for s in _steps(HOSTILE)], html_format("<i>{}</i>", HOSTILE))
    parser = _Parser()
    parser.feed(page)
    assert "img" not in parser.tags and "i" in parser.tags and HOSTILE in "".join(parser.text)
