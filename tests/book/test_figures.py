"""Figures a student can read, and cells that do not end in a stray value.

- every figure stored in a chapter is at least ``lga.viz.MIN_FIGURE_PX`` wide, and rendered at a
  resolution where ``MIN_FONT_PT`` is at least ``MIN_FONT_PX`` pixels tall (the PNG's pHYs chunk);
- every plot of :mod:`lga.viz`, drawn from small synthetic inputs, writes no text below
  ``MIN_FONT_PT`` and no two tick labels of an axis overlap; :func:`lga.viz.use_book_style` raises
  matplotlib's defaults to the minimum;
- no chapter code cell (nor :mod:`lga.viz`) asks for a font below the minimum by a literal;
- no chapter cell shows a bare number or string as its result (a helper's return value shown by
  accident), unless its last line says ``# value shown``.

The checks of stored outputs read the committed chapters: a chapter whose code changed passes them
once it is executed again.
"""

from __future__ import annotations

import ast
import base64
import inspect
import io
import json
import re
import struct
import tokenize
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from lga import viz  # noqa: E402
from lga.viz import anatomy, beyond, fusion, matching, phases, results, training  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
VALUE_SHOWN = "# value shown"   # a cell's last line with this comment may show a bare value


def code_cells(path: Path):
    """``(index, source, cell)`` of each code cell of a notebook (index among all cells)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            yield i, "".join(cell["source"]), cell


# ---------------------------------------------------------------- stored figures: size and resolution

def png_size_dpi(data: bytes) -> tuple[int, int, float | None]:
    """Width, height (pixels) and resolution (dots per inch, from pHYs; None without it) of a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    pos, dpi = 8, None
    while pos + 8 <= len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"pHYs":
            x, _, unit = struct.unpack(">IIB", data[pos + 8:pos + 17])
            dpi = x * 0.0254 if unit == 1 else None
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return width, height, dpi


def figure_problems(data: bytes) -> list[str]:
    """Why a stored PNG is not legible ([] when it is)."""
    width, height, dpi = png_size_dpi(data)
    out = []
    if width < viz.MIN_FIGURE_PX:
        out.append(f"{width}x{height} px is narrower than {viz.MIN_FIGURE_PX} px")
    if dpi is None:
        out.append("no resolution (pHYs) recorded")
    elif viz.MIN_FONT_PT * dpi / 72 < viz.MIN_FONT_PX:
        out.append(f"{dpi:.0f} dpi draws {viz.MIN_FONT_PT} pt as {viz.MIN_FONT_PT * dpi / 72:.1f} px "
                   f"(< {viz.MIN_FONT_PX} px)")
    return out


def _png(figsize, dpi) -> bytes:
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def test_the_constants_promise_legible_letters():
    assert viz.MIN_FONT_PT * viz.FIGURE_DPI / 72 >= viz.MIN_FONT_PX
    assert viz.FONT_SMALL >= viz.MIN_FONT_PT and viz.FONT_TITLE >= viz.MIN_FONT_PT


def test_the_png_check_reads_width_and_resolution():
    assert png_size_dpi(_png((6, 3), viz.FIGURE_DPI))[0] == 6 * viz.FIGURE_DPI
    assert figure_problems(_png((6, 3), viz.FIGURE_DPI)) == []
    narrow, coarse = figure_problems(_png((4, 3), 100)), figure_problems(_png((8, 3), 72))
    assert len(narrow) == 1 and "narrower" in narrow[0]
    assert len(coarse) == 1 and "72 dpi" in coarse[0]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_stored_figures_are_wide_enough_and_sharp_enough(chapter):
    bad = []
    for i, _, cell in code_cells(chapter):
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                bad += [f"{chapter.name} cell {i}: {p}" for p in figure_problems(base64.b64decode(png))]
    assert not bad, "figures a reader cannot read (enlarge the figure, keep the default dpi):\n" + "\n".join(bad)


# ---------------------------------------------------------------- lga.viz plots, drawn

def _result(mean, n=40, seed=0):
    from lga.engine.evaluate import EvalResult

    rng = np.random.default_rng(seed)
    return EvalResult(accuracies=np.clip(rng.normal(mean, 0.1, n), 0, 1))


def _comparison(diff):
    from lga.engine.evaluate import Comparison

    return Comparison(mean_a=0.5 + diff, mean_b=0.5, diff=diff, ci95=0.02, num_episodes=100)


LONG_NAMES = [f"spin box clockwise, push it right and tap it #{i}" for i in range(24)]


def _frames(t=8, h=16, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (t, h, w, 3)).astype(np.uint8)


def _similarity_panels():
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4), layout="constrained")   # as chapter 4 draws it
    sim = np.random.default_rng(0).uniform(-1, 1, (24, 24))
    for ax in axes:
        im = anatomy.similarity_heatmap(ax, sim, LONG_NAMES, [(0, 1), (4, 5)], title="labels",
                                        show_names=ax is axes[0])
    fig.colorbar(im, ax=axes, shrink=0.8, label="cosine similarity")
    return fig


def _on_axes(draw, figsize=(6.5, 3), ncols=1):
    def make():
        fig, axes = plt.subplots(1, ncols, figsize=figsize, squeeze=False)
        draw(axes[0] if ncols > 1 else axes[0, 0])
        return fig
    return make


class _Schedule:
    total = 100

    def factor(self, step):
        return min(1.0, (step + 1) / 10) * 0.5 ** (step // 40)


_LOG = ([{"step": s, "loss": 1.5 - s / 300, "accuracy": 0.3 + s / 500, "lr": 1e-3} for s in range(10, 210, 10)]
        + [{"step": s, "val_accuracy": 0.4 + s / 1000, "val_ci95": 0.02} for s in (100, 200)])

#: every plotting function of lga.viz, drawn as the chapters call it: name -> a function making a figure
PLOTS = {
    "viz.frame_strip": _on_axes(lambda ax: viz.frame_strip(ax, _frames(), [0, 3, 5, 8], "a video: ground truth",
                                                           frame_ids=range(0, 16, 2)), figsize=(7, 1.5)),
    "viz.show_episode": lambda: viz.show_episode(
        np.stack([_frames(seed=s) for s in range(6)]), SimpleNamespace(classes=[0, 1], support=[0, 1], query=[2, 3, 4, 5]),
        ["push ball right", "spin cone clockwise"]),
    "viz.learning_curve": lambda: viz.learning_curve(SimpleNamespace(loss=np.linspace(2, 1, 60),
                                                                     accuracy=np.linspace(0.2, 0.6, 60))).figure,
    "viz.accuracy_bars": lambda: viz.accuracy_bars(["ProtoNet", "CLIP-FSAR", "LGA"], [0.4, 0.5, 0.6],
                                                   [0.02, 0.02, 0.03], chance=0.2, title="5-way 1-shot").figure,
    "anatomy.similarity_heatmap": _similarity_panels,
    "beyond.paired_differences": _on_axes(lambda ax: beyond.paired_differences(
        ax, {"CLUSTER-Segment": _comparison(0.03), "uniform thirds": _comparison(-0.001)}, "full LGA", title="gains")),
    "beyond.accuracy_vs": _on_axes(lambda ax: beyond.accuracy_vs(
        ax, [1, 2, 3], {"LGA": [_result(m) for m in (0.5, 0.6, 0.7)]}, "phases", chance=0.2, title="phases")),
    "fusion.attention_map": _on_axes(lambda ax: fusion.attention_map(
        ax, np.random.default_rng(0).dirichlet(np.ones(3), (2, 3)), title="head mean"), figsize=(3, 3)),
    "fusion.learning_curve": _on_axes(lambda ax: fusion.learning_curve(
        ax, np.random.default_rng(0).normal(1, 0.2, 100), label="loss", ylabel="loss")),
    "matching.distance_matrix": _on_axes(lambda ax: matching.distance_matrix(
        ax, np.random.default_rng(0).uniform(0, 2, (8, 8)), [(i, i) for i in range(8)], title="distances"),
        figsize=(4, 3.5)),
    "matching.grouped_accuracy_bars": _on_axes(lambda ax: matching.grouped_accuracy_bars(
        ax, {m: {g: _result(0.6) for g in ("order", "mirror", "object")} for m in ("OTAM", "AB-MHM")},
        chance=0.5, title="hard pairs"), figsize=(7, 3)),
    "phases.merge_history": _on_axes(lambda ax: phases.merge_history(
        ax, [np.arange(9), [0, 1, 2, 3, 5, 6, 7, 8], [0, 2, 3, 5, 8], [0, 3, 5, 8]], title="merges")),
    "phases.mask_image": _on_axes(lambda ax: phases.mask_image(
        ax, np.eye(3, dtype=bool).repeat([3, 3, 2], axis=1), title="masks")),
    "results.accuracy_table_bars": _on_axes(lambda ax: results.accuracy_table_bars(
        ax, ["ProtoNet", "label-only", "full LGA"], [_result(m) for m in (0.4, 0.5, 0.6)],
        groups=[["ProtoNet", "label-only"], ["full LGA"]], title="5-way 1-shot", chance=20)),
    "results.accuracy_vs": _on_axes(lambda ax: results.accuracy_vs(
        ax, [0.0, 0.5, 1.0], {"full LGA": [_result(m) for m in (0.7, 0.6, 0.5)],
                              "video-text only": [_result(m) for m in (0.6, 0.5, 0.3)]}, "noise", title="noise")),
    "results.gain_bars": _on_axes(lambda ax: results.gain_bars(
        ax, ["base", "+ text", "+ fusion"], [0.0, 2.1, 3.4], [_comparison(d) for d in (0.0, 0.01, 0.02)], title="gains")),
    "training.run_curves": _on_axes(lambda axes: training.run_curves(axes, _LOG, title="a run"),
                                    figsize=(11, 3), ncols=3),
    "training.schedule_curves": _on_axes(lambda ax: training.schedule_curves(ax, {"step": _Schedule()})),
}

#: public functions of lga.viz that draw no matplotlib figure (HTML, widgets, encoded images)
NOT_PLOTS = {"viz.html_format", "viz.strip_image", "viz.class_browser", "viz.linked_pages", "viz.anatomy_html",
             "viz.font_points", "viz.use_book_style", "anatomy.anatomy_browser", "phases.phase_explorer"}


def test_every_plot_of_lga_viz_is_checked():
    public = set()
    for prefix, module in (("viz", viz), ("anatomy", anatomy), ("beyond", beyond), ("fusion", fusion),
                           ("matching", matching), ("phases", phases), ("results", results), ("training", training)):
        for name, obj in vars(module).items():
            if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module.__name__:
                public.add(f"{prefix}.{name}")
    missing = public - set(PLOTS) - NOT_PLOTS
    assert not missing, f"add these plots of lga.viz to PLOTS (with synthetic inputs): {sorted(missing)}"


def small_texts(fig) -> list[str]:
    """The drawn texts of ``fig`` below the minimum size, as ``'text' (size pt)``."""
    fig.canvas.draw()
    return [f"{t.get_text()!r} ({t.get_fontsize():.1f} pt)" for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and t.get_fontsize() < viz.MIN_FONT_PT]


def overlapping_tick_labels(fig) -> list[str]:
    """Pairs of neighbouring tick labels of one axis whose boxes overlap, in a drawn figure."""
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text().strip()]
            boxes = [t.get_window_extent(renderer) for t in labels]
            for (a, ta), (b, tb) in zip(zip(boxes, labels), zip(boxes[1:], labels[1:])):
                if a.overlaps(b):
                    out.append(f"{ta.get_text()!r} / {tb.get_text()!r}")
    return out


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_lga_viz_plots_write_no_small_text_and_no_crowded_ticks(name):
    fig = PLOTS[name]()
    try:
        small = small_texts(fig)
        assert not small, f"{name}: text below {viz.MIN_FONT_PT} pt: {small[:8]}"
        crowded = overlapping_tick_labels(fig)
        assert not crowded, f"{name}: tick labels overlap: {crowded[:8]}"
    finally:
        plt.close(fig)


def test_small_text_is_found():
    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "tiny", fontsize=6)
    ax.set_title("fine", fontsize=viz.FONT_TITLE)
    try:
        assert small_texts(fig) == ["'tiny' (6.0 pt)"]
    finally:
        plt.close(fig)


def test_crowded_tick_labels_are_found():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_yticks(range(30), [f"a long class name {i}" for i in range(30)])
    ax.set_xticks(range(3), ["a", "b", "c"])
    try:
        fig.canvas.draw()
        crowded = overlapping_tick_labels(fig)
        assert crowded and all("long class name" in c for c in crowded)
    finally:
        plt.close(fig)


SIZE_KEYS = ("font.size", "xtick.labelsize", "ytick.labelsize", "legend.fontsize", "axes.titlesize",
             "axes.labelsize", "figure.titlesize")


def test_book_style_raises_small_defaults_and_keeps_larger_ones():
    with matplotlib.rc_context({"font.size": 6, "xtick.labelsize": "x-small", "legend.fontsize": 5,
                                "axes.titlesize": 14, "figure.dpi": 72}):
        viz.use_book_style()
        rc = matplotlib.rcParams
        for key in SIZE_KEYS:
            assert viz.font_points(rc[key]) >= viz.MIN_FONT_PT, (key, rc[key])
        assert rc["axes.titlesize"] == 14            # a larger size of the reader's own stays
        assert rc["figure.dpi"] == viz.FIGURE_DPI
    with matplotlib.rc_context({"font.size": 14, "figure.dpi": 150}):
        viz.use_book_style()
        assert matplotlib.rcParams["font.size"] == 14 and matplotlib.rcParams["figure.dpi"] == 150


def test_importing_lga_viz_leaves_matplotlib_defaults_at_the_minimum():
    for key in SIZE_KEYS:   # lga.viz (imported above) applied use_book_style
        assert viz.font_points(matplotlib.rcParams[key]) >= viz.MIN_FONT_PT, key
    for size in ("small", "medium", "large"):   # the relative sizes chapters may use
        assert viz.font_points(size) >= viz.MIN_FONT_PT, size


# ---------------------------------------------------------------- font sizes written in code

SIZE_ARG = re.compile(r"(?:\b(?:fontsize|labelsize|title_fontsize)\s*=\s*|\bset_fontsize\(\s*|[\"']size[\"']\s*:\s*)"
                      r"(-?\d+(?:\.\d+)?|[\"'][\w-]+[\"'])")


def small_literal_sizes(source: str) -> list[str]:
    """Literal font sizes in ``source`` that resolve below the minimum (under the book's style)."""
    out = []
    for m in SIZE_ARG.finditer(source):
        value = m.group(1).strip("\"'")
        points = float(value) if value[0].isdigit() or value[0] == "-" else viz.font_points(value)
        if points < viz.MIN_FONT_PT:
            out.append(f"{m.group(0)} ({points:.1f} pt)")
    return out


def test_the_scan_finds_small_literal_sizes():
    src = 'ax.legend(fontsize=7)\nax.tick_params(labelsize="x-small")\nt.set_fontsize(6)\nax.set_title(x, fontsize=9)\n' \
          'ax.legend(prop={"size": 5})\nax.text(0, 0, "a", fontsize=viz.FONT_SMALL)\nfig, ax = plt.subplots(figsize=(3, 2))'
    assert len(small_literal_sizes(src)) == 4


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_cells_ask_for_no_font_below_the_minimum(chapter):
    bad = [f"{chapter.name} cell {i}: {s}" for i, src, _ in code_cells(chapter) for s in small_literal_sizes(src)]
    assert not bad, f"use lga.viz.FONT_SMALL (or a larger size), not: {bad}"


def test_lga_viz_uses_the_named_sizes():
    bad = []
    for path in sorted((ROOT / "lga" / "viz").glob("*.py")):
        for m in re.finditer(r"\b(?:fontsize|labelsize)\s*=\s*[\d\"']", path.read_text()):
            bad.append(f"{path.name}: {m.group(0)}")
    assert not bad, f"use the named sizes of lga.viz (FONT_SMALL, FONT_TITLE), not literals: {bad}"


# ---------------------------------------------------------------- cells ending in a bare value

BARE = re.compile(r"-?(?:\d[\d,_]*\.?\d*(?:e[+-]?\d+)?|nan|inf)|'[^'\n]*'|\"[^\"\n]*\"|None|True|False"
                  r"|(?:np\.\w+|tensor)\(-?[\w.+-]*\)", re.I)
QUIET_HELPERS = {"glue_number", "check_band"}   # lga.book helpers that return (and so display) a value


def last_line(source: str) -> str:
    lines = [ln for ln in source.rstrip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def ends_quiet(source: str) -> bool:
    """Whether IPython shows nothing for the cell's last expression (its last token is ``;``)."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER,
                                tokenize.INDENT, tokenize.DEDENT)]
    return bool(tokens) and tokens[-1].string == ";"


def shows_helper_value(source: str) -> bool:
    """The cell ends with a call of glue_number/check_band whose value IPython would display."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    if not body or not isinstance(body[-1], ast.Expr) or not isinstance(body[-1].value, ast.Call):
        return False
    func = body[-1].value.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name in QUIET_HELPERS and not ends_quiet(source) and VALUE_SHOWN not in last_line(source)


def test_the_bare_value_checks_tell_a_stray_value_from_a_shown_one():
    assert BARE.fullmatch("49.137931034482754") and BARE.fullmatch("'256'") and BARE.fullmatch("None")
    assert BARE.fullmatch("'1,000'") and BARE.fullmatch("np.float64(0.5)") and BARE.fullmatch("-0.04")
    assert not BARE.fullmatch("   dataset  train\n0  hmdb51  31") and not BARE.fullmatch("VBox(children=(...))")
    assert shows_helper_value('x = 1\nglue_number("x", x, "d")')
    assert shows_helper_value('check_band("loss", loss,\n           0.5, 1.0)  # the band')
    assert not shows_helper_value('glue_number("x", x, "d");')
    assert not shows_helper_value('check_band("loss", loss, 0.5, 1.0);  # quiet')
    assert not shows_helper_value('_ = check_band("loss", loss, 0.5, 1.0)')
    assert not shows_helper_value(f'check_band("loss", loss, 0.5, 1.0)  {VALUE_SHOWN}')


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_cell_ends_in_a_helper_value(chapter):
    bad = [f"{chapter.name} cell {i}: {last_line(src)}" for i, src, _ in code_cells(chapter) if shows_helper_value(src)]
    assert not bad, f"end these cells with ';' (or mark the last line {VALUE_SHOWN!r}): {bad}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_checked_cell_relies_on_a_semicolon(chapter):
    """nbval runs cells without storing them in IPython's history, so a trailing ';' does not quiet a
    value there: a cell whose outputs nbval compares (NBVAL_CHECK_OUTPUT) would then show one more
    output than the committed notebook. Such a cell ends in an assignment (``_ = glue_number(...)``)."""
    bad = [f"{chapter.name} cell {i}: {last_line(src)}" for i, src, _ in code_cells(chapter)
           if "NBVAL_CHECK_OUTPUT" in src and last_line(src).split("#")[0].rstrip().endswith(";")]
    assert not bad, f"end these checked cells with an assignment (`_ = ...`), not ';': {bad}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_stored_cell_result_is_a_bare_value(chapter):
    bad = []
    for i, src, cell in code_cells(chapter):
        for out in cell.get("outputs", []):
            data = out.get("data", {}) if out.get("output_type") == "execute_result" else {}
            text = "".join(data.get("text/plain", "")).strip()
            if set(data) == {"text/plain"} and BARE.fullmatch(text) and VALUE_SHOWN not in last_line(src):
                bad.append(f"{chapter.name} cell {i} shows {text[:40]} ({last_line(src).strip()[:80]})")
    assert not bad, (f"cells ending in a bare value (end the line with ';', print a labelled line, or mark it "
                     f"{VALUE_SHOWN!r} where the value is the point): {bad}")
