"""Plots and interactive explorers used by the book. Each returns its matplotlib figure or widget.

General helpers live here; chapter-specific ones in submodules (``lga.viz.<topic>``).

Legibility: every text of a figure is at least :data:`MIN_FONT_PT` points, and the book renders its
figures at :data:`FIGURE_DPI`, so the smallest letters are at least :data:`MIN_FONT_PX` pixels tall.
Figures use the named sizes (:data:`FONT_SMALL`, :data:`FONT_TITLE`), never a smaller number;
:func:`use_book_style` (applied on import, here and by :mod:`lga.book`) raises matplotlib's defaults to
the same minimum. ``tests/book/test_figures.py`` checks the stored figures and every plot of this package.
"""

from __future__ import annotations

import html
import io
import string

import matplotlib
import numpy as np

PHASE_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e")

#: the smallest font of any figure, in points (tick labels, legends, numbers written in cells)
MIN_FONT_PT = 8
#: tick labels, legends and annotations: the minimum itself
FONT_SMALL = MIN_FONT_PT
#: axes titles
FONT_TITLE = 10
#: matplotlib's base size (``font.size``); its relative sizes ("small", "large") scale with it
FONT_BASE = 10
#: the resolution of the book's figures (dots per inch; matplotlib's default ``figure.dpi``)
FIGURE_DPI = 100
#: the smallest letters a reader sees, in pixels: MIN_FONT_PT at FIGURE_DPI is 8 / 72 * 100 = 11.1 px
MIN_FONT_PX = 10
#: the narrowest figure the book shows, in pixels (5 inches at FIGURE_DPI): narrower ones crowd
#: their labels and titles
MIN_FIGURE_PX = 500

#: rcParams holding a font size, and the named size each is raised to when it resolves below the minimum
_RC_SIZES = {"xtick.labelsize": FONT_SMALL, "ytick.labelsize": FONT_SMALL, "legend.fontsize": FONT_SMALL,
             "legend.title_fontsize": FONT_SMALL, "axes.labelsize": FONT_SMALL,
             "axes.titlesize": FONT_TITLE, "figure.titlesize": FONT_TITLE}


def font_points(size) -> float:
    """A matplotlib font size (points, or a name such as ``"small"``) in points, under the current rcParams."""
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=size).get_size_in_points()


def use_book_style() -> None:
    """Raise matplotlib's default sizes to the book's minimum; leave larger ones (a reader's own) alone.

    Sets ``font.size`` to at least :data:`FONT_BASE`, every font size of ``_RC_SIZES`` (ticks,
    legends, axes labels and titles) that resolves below :data:`MIN_FONT_PT` to its named size, and
    ``figure.dpi`` to at least :data:`FIGURE_DPI`. Applied when :mod:`lga.viz` or :mod:`lga.book`
    is imported; calling it again is harmless.
    """
    rc = matplotlib.rcParams
    rc["font.size"] = max(float(rc["font.size"]), FONT_BASE)
    for key, named in _RC_SIZES.items():
        if rc[key] is not None and font_points(rc[key]) < MIN_FONT_PT:
            rc[key] = named
    rc["figure.dpi"] = max(float(rc["figure.dpi"]), FIGURE_DPI)


use_book_style()


class _EscapingFormatter(string.Formatter):
    """``str.format`` whose every replacement field is HTML-escaped after formatting."""

    def format_field(self, value, format_spec: str) -> str:
        return html.escape(super().format_field(value, format_spec))

    def get_field(self, field_name, args, kwargs):
        if not field_name.replace("_", "a").isalnum():  # no attribute or item look-ups in data
            raise ValueError(f"html_format: use plain fields ({{}} or {{name}}), not {{{field_name}}}")
        return super().get_field(field_name, args, kwargs)


def html_format(template: str, /, *args, **kwargs) -> str:
    """``template.format(*args, **kwargs)`` with every value HTML-escaped: HTML built from data.

    ``template`` is trusted markup written in the code; the values are data (class names, labels,
    anatomy text) and are escaped after their format spec is applied, so
    ``html_format("<b>{}</b> error {:.1f}", name, 0.25)`` shows ``name`` as text whatever it holds.
    Fields are plain (``{}``, ``{0}``, ``{name}``, with a format spec): attribute and item look-ups
    are refused.
    """
    return _EscapingFormatter().vformat(template, args, kwargs)


def frame_strip(ax, frames, bounds=None, title: str | None = None, frame_ids=None):
    """Draw frames ``[T, H, W, 3]`` side by side on ``ax``; colour-code phases given ``bounds [L+1]``.

    ``bounds`` are indices into ``frames`` (phase i = frames ``bounds[i]..bounds[i+1]-1``).
    """
    frames = np.asarray(frames)
    t, h, w, _ = frames.shape
    gap = max(1, w // 16)
    canvas = np.full((h, t * (w + gap) - gap, 3), 255, np.uint8)
    for i in range(t):
        canvas[:, i * (w + gap): i * (w + gap) + w] = frames[i]
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([i * (w + gap) + w / 2 for i in range(t)])
    ax.set_xticklabels([str(f) for f in (frame_ids if frame_ids is not None else range(t))], fontsize=FONT_SMALL)
    ax.set_yticks([])
    if bounds is not None:
        for p in range(len(bounds) - 1):
            x0, x1 = bounds[p] * (w + gap) - gap / 2, bounds[p + 1] * (w + gap) - gap / 2
            ax.plot([x0 + 1, x1 - 1], [h + 2, h + 2], color=PHASE_COLORS[p % len(PHASE_COLORS)],
                    lw=4, solid_capstyle="butt", clip_on=False)
        ax.set_ylim(h + 4, -0.5)
    if title:
        ax.set_title(title, fontsize=FONT_TITLE, loc="left")
    for s in ax.spines.values():
        s.set_visible(False)
    return ax


def show_episode(clips, episode, class_names, frame: int | None = None):
    """One episode as a grid: a row per class, its support shots then its queries (middle frame)."""
    import matplotlib.pyplot as plt

    clips = np.asarray(clips)
    t = clips.shape[1]
    frame = t // 2 if frame is None else frame
    n = len(episode.classes)
    k = len(episode.support) // n
    q = len(episode.query) // n
    fig, axes = plt.subplots(n, k + q, figsize=(1.3 * (k + q) + 1.5, 1.3 * n), squeeze=False)
    for c in range(n):
        for j in range(k):
            ax = axes[c, j]
            ax.imshow(clips[episode.support[c * k + j], frame])
            if c == 0:
                ax.set_title("support", fontsize=FONT_SMALL)
        for j in range(q):
            ax = axes[c, k + j]
            ax.imshow(clips[episode.query[c * q + j], frame])
            for s in ax.spines.values():
                s.set_edgecolor("#d95f02")
                s.set_linewidth(2)
            if c == 0:
                ax.set_title("query", fontsize=FONT_SMALL)
        axes[c, 0].set_ylabel(class_names[int(episode.classes[c])], fontsize=FONT_SMALL, rotation=0,
                              ha="right", va="center")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def learning_curve(history, window: int = 25, ax=None):
    """Training loss and episode accuracy (running means over ``window`` episodes)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    kernel = np.ones(window) / window
    for values, label, color in ((history.loss, "loss", "#1b9e77"), (history.accuracy, "accuracy", "#d95f02")):
        v = np.asarray(values)
        if len(v) >= window:
            ax.plot(np.arange(window - 1, len(v)), np.convolve(v, kernel, mode="valid"), label=label, color=color)
    ax.set_xlabel("training episode")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def accuracy_bars(names, means, cis, ax=None, chance: float | None = None, title: str | None = None):
    """Bar chart of accuracies (0..1) with 95% confidence intervals."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3))
    x = np.arange(len(names))
    ax.bar(x, 100 * np.asarray(means), yerr=100 * np.asarray(cis), capsize=4, color="#7570b3")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=0)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    if chance is not None:
        ax.axhline(100 * chance, ls="--", color="grey", lw=1, label="chance")
        ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return ax


def strip_image(frames, bounds=None, fmt: str = "jpeg", quality: int = 85) -> bytes:
    """Frames ``[T, H, W, 3]`` side by side, phases (``bounds [L+1]``) as coloured bars, encoded.

    Built with numpy and Pillow (no matplotlib), so that pages holding many strips stay small.
    """
    from PIL import Image  # heavy: Pillow, only for frame strips

    frames = np.asarray(frames)
    t, h, w, _ = frames.shape
    gap, bar = 2, max(3, h // 12)
    canvas = np.full((h + 2 * bar, t * (w + gap) - gap, 3), 255, np.uint8)
    for i in range(t):
        canvas[:h, i * (w + gap): i * (w + gap) + w] = frames[i]
    if bounds is not None:
        for p in range(len(bounds) - 1):
            color = np.array([int(PHASE_COLORS[p % len(PHASE_COLORS)][k:k + 2], 16) for k in (1, 3, 5)])
            x0, x1 = bounds[p] * (w + gap), max(bounds[p], bounds[p + 1] * (w + gap) - gap)
            canvas[h + bar // 2: h + bar // 2 + bar, x0:x1] = color
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format=fmt.upper(), quality=quality)
    return buf.getvalue()


def class_browser(entries):
    """An interactive browser: pick a class, see its videos' frame strips and its anatomy.

    ``entries``: list of dicts with ``name`` (str), ``strips`` (list of JPEG bytes from
    :func:`strip_image`) and ``html``
    (anatomy text, as HTML: :func:`anatomy_html`, or :func:`html_format` for data). The widgets are linked in the browser (``jslink``), so the browser also works in
    the static HTML book, without a running kernel.
    """
    import ipywidgets as W  # optional: ipywidgets, only in a live notebook

    pages = []
    for e in entries:
        images = [W.Image(value=img, format="jpeg", layout=W.Layout(width="100%", max_width="760px"))
                  for img in e["strips"]]
        pages.append(W.VBox([W.HTML(e["html"]), *images]))
    return linked_pages([e["name"] for e in entries], pages, "class")


def linked_pages(names, pages, description: str, width: str = "420px"):
    """A ``Dropdown`` of ``names`` that shows the matching widget of ``pages`` (a ``Stack``).

    The two are linked in the browser (``ipywidgets.jslink``), not by Python callbacks, so the
    picker keeps working in the static HTML book, without a running kernel.
    """
    import ipywidgets as W  # optional: ipywidgets, only in a live notebook

    stack = W.Stack(list(pages), selected_index=0)
    picker = W.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=0,
                        description=description, layout=W.Layout(width=width))
    W.jslink((picker, "index"), (stack, "selected_index"))
    return W.VBox([picker, stack])


def anatomy_html(name: str, steps, extra: str = "") -> str:
    """A class's anatomy (its steps) as a small HTML table.

    ``name`` and the steps' fields are escaped here; ``extra`` is HTML shown after the name, so
    build it from data with :func:`html_format`.
    """
    rows = "".join(
        f"<tr><td style='color:{PHASE_COLORS[i % len(PHASE_COLORS)]};font-weight:bold'>{i + 1}</td>"
        f"<td>{html.escape(s['subject'])}</td><td>{html.escape(s['motion'])}</td>"
        f"<td>{html.escape(s['object'])}</td><td><i>{html.escape(s['description'])}</i></td></tr>"
        for i, s in enumerate(steps))
    return (f"<b>{html.escape(name)}</b> {extra}<table style='font-size:90%'>"
            "<tr><th>phase</th><th>subject</th><th>motion</th><th>object</th><th>description</th></tr>"
            f"{rows}</table>")


