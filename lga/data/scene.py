"""The 2D world of AtomicActions: agents, objects, motions, and a tiny anti-aliased renderer.

A video is a sequence of L atomic actions performed by one *subject* (an agent) on one *object*.
Each motion is a function of the phase progress ``u`` in [0, 1] that moves the object and the
subject from the state the previous phase left them in, so phases chain continuously and only the
*sequence* of motions tells classes apart. Coordinates are in units of the frame (0..1, y down).

Rendering uses signed distance fields on a pixel grid, so shapes are smooth at 64 px and the whole
frame is a handful of numpy operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

SUBJECTS = ("hand", "claw", "robot")
OBJECTS = ("ball", "box", "ring", "cone", "stick")
MOTIONS = ("reach", "withdraw", "push_left", "push_right", "lift", "lower",
           "spin_cw", "spin_ccw", "shake", "tap", "toss", "squeeze")
#: motions that are the mirror image (in direction) of each other
MIRROR = {"push_left": "push_right", "push_right": "push_left", "lift": "lower", "lower": "lift",
          "spin_cw": "spin_ccw", "spin_ccw": "spin_cw"}
#: where each subject rests relative to the object, and from which side it grips it
_REST = {"hand": (0.0, 0.30), "claw": (0.0, -0.30), "robot": (-0.30, 0.0)}
_GRIP = {"hand": (0.0, 1.0), "claw": (0.0, -1.0), "robot": (-1.0, 0.0)}
_APPROACH = 0.25  # share of a contact motion spent moving the subject into contact
_D = math.sqrt(0.5)
#: v2: the side from which the subject holds the object for each motion (unit vector from the object's
#: centre, y down), as a hand grips an object differently to lift, lower, turn or squeeze it; so one
#: frame shows which motion is going on. v1 grips every object from the subject's own side
#: (``_GRIP``), pushes aside.
MOTION_GRIPS = {"push_left": (1.0, 0.0), "push_right": (-1.0, 0.0), "lift": (0.0, 1.0), "toss": (0.0, 1.0),
                "lower": (0.0, -1.0), "tap": (0.0, -1.0), "spin_cw": (-_D, -_D), "spin_ccw": (_D, -_D),
                "shake": (-_D, _D), "squeeze": (_D, _D)}
#: v2 ``phase_cue``: the tool the subject holds during each motion, ``(angle in degrees, colour)``: a
#: bar from the subject's centre pointing at ``angle`` (0 = right, 90 = up) with a knob at its tip, a
#: different direction and hue for every motion (hues 30 degrees apart), as a worker picks up another
#: tool for each step; so one frame shows which atomic action is going on, mirror motions included.
MOTION_TOOLS = {"reach": (90, (255, 0, 0)), "withdraw": (270, (0, 255, 255)),
                "push_left": (180, (255, 128, 0)), "push_right": (0, (0, 128, 255)),
                "lift": (60, (255, 255, 0)), "lower": (240, (0, 0, 255)),
                "spin_cw": (30, (128, 255, 0)), "spin_ccw": (150, (128, 0, 255)),
                "shake": (120, (0, 255, 0)), "tap": (300, (255, 0, 255)),
                "toss": (210, (0, 255, 128)), "squeeze": (330, (255, 0, 128))}


@dataclass(frozen=True)
class State:
    """Where things are: object centre, angle (rad) and scale; subject centre."""

    ox: float
    oy: float
    angle: float
    scale: float
    sx: float
    sy: float


@dataclass(frozen=True)
class Look:
    """Per-video appearance (nuisances): sizes, colours, amplitude, clutter, distractors, noise."""

    obj_size: float            # object radius, frame units
    subj_size: float           # subject radius
    amplitude: float           # displacement of push/lift/lower, frame units
    obj_color: tuple
    subj_color: tuple
    background: tuple
    clutter: list              # [(x, y, r, (r,g,b)), ...] faint static blobs
    distractors: list          # [(shape, x, y, r, (r,g,b), vx, vy), ...]
    occluder: tuple | None     # (x0, width, vx, (r,g,b)) vertical bar sliding sideways, or None
    noise: float               # std of Gaussian pixel noise (0..255 scale)
    #: v2: where the subject holds the object per motion (``MOTION_GRIPS``); None: v1's grips
    grips: dict | None = None
    #: v2: one track per distractor, float ``[T, 4]`` (x, y, angle, scale) per frame, replacing the
    #: straight drift ``(x + vx t, y + vy t)`` of ``distractors``; None: drift (v1)
    distractor_tracks: tuple | None = None
    #: v2: opacity of the tool of :data:`MOTION_TOOLS` the subject holds (``phase_cue``; 0: none)
    tool_alpha: float = 0.0


def _ease(u: float) -> float:
    """Smoothstep: motions start and stop gently."""
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def contact_point(subject: str, motion: str, st: State, size: float,
                  grips: dict | None = None) -> tuple[float, float]:
    """Where the subject touches the object for ``motion``: from ``grips[motion]`` if given (v2),
    else from the subject's own side, pushes from the opposite side (v1)."""
    gx, gy = _GRIP[subject]
    if grips is not None and motion in grips:
        gx, gy = grips[motion]
    elif motion == "push_left":
        gx, gy = 1.0, 0.0
    elif motion == "push_right":
        gx, gy = -1.0, 0.0
    d = size * st.scale + 0.5 * size
    return st.ox + gx * d, st.oy + gy * d


def rest_point(subject: str, st: State) -> tuple[float, float]:
    dx, dy = _REST[subject]
    return st.ox + dx, st.oy + dy


def step(motion: str, subject: str, start: State, u: float, look: Look) -> State:
    """The state at progress ``u`` of a phase performing ``motion`` from state ``start``."""
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; known: {MOTIONS}")
    a = look.amplitude
    if motion == "reach":
        tx, ty = contact_point(subject, "reach", start, look.obj_size, look.grips)
        e = _ease(u)
        return replace(start, sx=start.sx + (tx - start.sx) * e, sy=start.sy + (ty - start.sy) * e)
    if motion == "withdraw":
        tx, ty = rest_point(subject, start)
        e = _ease(u)
        return replace(start, sx=start.sx + (tx - start.sx) * e, sy=start.sy + (ty - start.sy) * e)
    # contact motions: first move the subject into contact, then act on the object
    if u < _APPROACH:
        tx, ty = contact_point(subject, motion, start, look.obj_size, look.grips)
        e = _ease(u / _APPROACH)
        return replace(start, sx=start.sx + (tx - start.sx) * e, sy=start.sy + (ty - start.sy) * e)
    v = (u - _APPROACH) / (1 - _APPROACH)
    e = _ease(v)
    ox, oy, ang, sc = start.ox, start.oy, start.angle, start.scale
    if motion == "push_left":
        ox -= a * e
    elif motion == "push_right":
        ox += a * e
    elif motion == "lift":
        oy -= a * e
    elif motion == "lower":
        oy += a * e
    elif motion == "spin_cw":
        ang += 2 * math.pi * e
    elif motion == "spin_ccw":
        ang -= 2 * math.pi * e
    elif motion == "shake":
        ox += 0.07 * math.sin(2 * math.pi * 3 * v)
    elif motion == "toss":
        oy -= 1.2 * a * math.sin(math.pi * v)
    elif motion == "squeeze":
        sc *= 1.0 - 0.4 * e
    obj = replace(start, ox=ox, oy=oy, angle=ang, scale=sc)
    sx, sy = contact_point(subject, motion, obj, look.obj_size, look.grips)
    if motion == "tap":  # the subject bounces off the object twice
        gx, gy = (look.grips or {}).get(motion, _GRIP[subject])
        lift = 0.12 * abs(math.sin(2 * math.pi * v))
        sx, sy = sx + gx * lift, sy + gy * lift
    if motion == "toss":  # the object leaves the subject's grip and comes back
        sx, sy = contact_point(subject, motion, start, look.obj_size, look.grips)
    return replace(obj, sx=sx, sy=sy)


def phase_of(frame: int, bounds: list[int]) -> tuple[int, float]:
    """Phase index of ``frame`` and its progress u in [0, 1] within the phase."""
    for p in range(len(bounds) - 1):
        if bounds[p] <= frame < bounds[p + 1]:
            length = bounds[p + 1] - bounds[p]
            return p, (frame - bounds[p] + 1) / length
    raise ValueError(f"frame {frame} outside phase bounds {bounds}")


def simulate(subject: str, motions: list[str], bounds: list[int], look: Look,
             origin: tuple[float, float]) -> list[State]:
    """The state of every frame (``bounds[-1]`` frames) of a video that performs ``motions``."""
    st = State(origin[0], origin[1], 0.0, 1.0, 0.0, 0.0)
    # the subject starts away from the object before a reach, else already holding it
    if motions[0] == "reach":
        sx, sy = rest_point(subject, st)
    else:
        sx, sy = contact_point(subject, motions[0], st, look.obj_size, look.grips)
    starts = [replace(st, sx=sx, sy=sy)]
    for m in motions:
        starts.append(step(m, subject, starts[-1], 1.0, look))
    states = []
    for f in range(bounds[-1]):
        p, u = phase_of(f, bounds)
        states.append(step(motions[p], subject, starts[p], u, look))
    return states


#: motions that move an object on their own (a distractor "performs" them without a subject)
OBJECT_MOTIONS = ("push_left", "push_right", "lift", "lower", "spin_cw", "spin_ccw", "shake", "toss", "squeeze")


def object_track(motions: list[str], bounds: list[int], look: Look,
                 rng: np.random.Generator) -> np.ndarray:
    """The path of an object that performs ``motions`` in phases ``bounds`` with no visible subject
    (an atom-like distractor): float ``[bounds[-1], 4]`` rows (x, y, angle, scale), kept in frame
    (``look.obj_size`` and ``look.amplitude`` are the distractor's)."""
    look, origin = fit_origin("hand", motions, bounds, look, rng)
    states = simulate("hand", motions, bounds, look, origin)
    return np.array([(s.ox, s.oy, s.angle, s.scale) for s in states], dtype=np.float64)


def fit_origin(subject: str, motions: list[str], bounds: list[int], look: Look,
               rng: np.random.Generator) -> tuple[Look, tuple[float, float]]:
    """Pick a random start position (and shrink the amplitude if needed) so all stays in frame."""
    margin = look.obj_size * 1.1 + 0.02
    for _ in range(8):
        states = simulate(subject, motions, bounds, look, (0.0, 0.0))
        xs = [s.ox for s in states]
        ys = [s.oy for s in states]
        lo_x, hi_x = margin - min(xs), 1 - margin - max(xs)
        lo_y, hi_y = margin - min(ys), 1 - margin - max(ys)
        if lo_x <= hi_x and lo_y <= hi_y:
            return look, (float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y)))
        look = replace(look, amplitude=look.amplitude * 0.8)
    raise RuntimeError(f"motions {motions} do not fit in the frame")


# ----------------------------------------------------------------------------- rendering
#: how much each older ghost of a motion trail fades: the one k frames back has coverage 0.6 ** k
TRAIL_FADE = 0.6


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres X, Y ``[S, S]`` (x along columns), shared and read-only."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = np.meshgrid(c, c)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _alpha(sdf: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased coverage from a signed distance (frame units): 1 inside, 0 outside."""
    return np.clip(0.5 - sdf * size, 0.0, 1.0)


def _rotate(x, y, cx, cy, angle):
    c, s = math.cos(-angle), math.sin(-angle)
    dx, dy = x - cx, y - cy
    return c * dx - s * dy, s * dx + c * dy


def _box_sdf(px, py, hx, hy):
    qx, qy = np.abs(px) - hx, np.abs(py) - hy
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)


def _segment_sdf(x, y, ax, ay, bx, by, r):
    pax, pay, bax, bay = x - ax, y - ay, bx - ax, by - ay
    h = np.clip((pax * bax + pay * bay) / max(bax * bax + bay * bay, 1e-9), 0, 1)
    return np.hypot(pax - bax * h, pay - bay * h) - r


def shape_sdf(shape: str, x, y, cx, cy, r, angle=0.0) -> np.ndarray:
    """Signed distance (frame units, negative inside) of an object shape of radius ``r``."""
    px, py = _rotate(x, y, cx, cy, angle)
    if shape == "ball":
        return np.hypot(px, py) - r
    if shape == "box":
        return _box_sdf(px, py, 0.8 * r, 0.8 * r)
    if shape == "ring":
        return np.abs(np.hypot(px, py) - 0.75 * r) - 0.28 * r
    if shape == "cone":  # isosceles triangle pointing up (in its own frame)
        k = math.sqrt(3.0)
        qx, qy = np.abs(px) / r, (py + 0.35 * r) / r
        return np.maximum(k * 0.5 * qx + 0.5 * qy - 0.5, -qy - 0.35) * r * 0.9
    if shape == "stick":
        return _box_sdf(px, py, 1.15 * r, 0.28 * r)
    raise ValueError(f"unknown object shape {shape!r}; known: {OBJECTS}")


def _paint(img: np.ndarray, alpha: np.ndarray, color) -> None:
    """Blend ``color`` into ``img`` (in place; a view of a window of the frame) with coverage ``alpha``."""
    img += alpha[..., None] * (np.asarray(color, np.float32) - img)


def _window(size: int, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
    """The rows and columns of the pixels whose centres lie in ``[x0, x1] x [y0, y1]`` widened by two
    pixels: a shape inside that box covers no pixel outside them (anti-aliasing reaches half a
    pixel), so drawing it there gives the same image as drawing it on the whole frame, faster."""
    m = 2.0 / size
    c0, c1 = max(0, math.floor((x0 - m) * size)), min(size, math.ceil((x1 + m) * size))
    r0, r1 = max(0, math.floor((y0 - m) * size)), min(size, math.ceil((y1 + m) * size))
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _paint_object(img, x, y, size, shape, cx, cy, r, angle, color, weight: float = 1.0) -> None:
    """An object of radius ``r`` at ``(cx, cy)``, turned by ``angle``, with a dark marker on its rim
    (so that spinning is visible for every shape), its coverage scaled by ``weight`` (a fading
    ghost of a motion trail when < 1). Every shape lies within ``1.2 r`` of its centre."""
    w = _window(size, cx - 1.3 * r, cx + 1.3 * r, cy - 1.3 * r, cy + 1.3 * r)
    x, y, img = x[w], y[w], img[w]
    _paint(img, weight * _alpha(shape_sdf(shape, x, y, cx, cy, r, angle), size), color)
    mx, my = cx + 0.5 * r * math.sin(angle), cy - 0.5 * r * math.cos(angle)
    _paint(img, weight * 0.8 * _alpha(np.hypot(x - mx, y - my) - 0.22 * r, size), (20, 20, 20))


def _paint_subject(img, x, y, size, subject: str, sx: float, sy: float, s: float, color,
                   weight: float = 1.0) -> None:
    """The subject of size ``s`` with its centre (palm, gripper, body) at ``(sx, sy)``, its coverage
    scaled by ``weight``."""
    if subject == "hand":   # a palm on an arm that reaches in from the bottom edge
        w = _window(size, sx - s, sx + s, sy - s, max(sy, 1.2) + s)
        x, y, img = x[w], y[w], img[w]
        sdf = np.minimum(np.hypot(x - sx, y - sy) - s, _segment_sdf(x, y, sx, sy, sx, 1.2, 0.45 * s))
        _paint(img, weight * _alpha(sdf, size), color)
    elif subject == "claw":  # a gripper on a rod hanging from the top edge, with two prongs
        w = _window(size, sx - 1.3 * s, sx + 1.3 * s, min(sy, -0.2) - s, sy + 1.2 * s)
        x, y, img = x[w], y[w], img[w]
        sdf = np.minimum(_segment_sdf(x, y, sx, -0.2, sx, sy, 0.3 * s), _box_sdf(x - sx, y - sy, 1.1 * s, 0.35 * s))
        for side in (-1, 1):
            sdf = np.minimum(sdf, _segment_sdf(x, y, sx + side * s, sy, sx + side * 0.8 * s, sy + 0.9 * s, 0.22 * s))
        _paint(img, weight * _alpha(sdf, size), color)
    elif subject == "robot":  # a free-floating square body with two eyes
        w = _window(size, sx - 1.3 * s, sx + 1.3 * s, sy - 1.3 * s, sy + 1.3 * s)
        x, y, img = x[w], y[w], img[w]
        _paint(img, weight * _alpha(_box_sdf(x - sx, y - sy, s, s) - 0.2 * s, size), color)
        for side in (-1, 1):
            eye = np.hypot(x - (sx + side * 0.45 * s), y - (sy - 0.25 * s)) - 0.25 * s
            _paint(img, weight * _alpha(eye, size), (250, 250, 250))
    else:
        raise ValueError(f"unknown subject {subject!r}; known: {SUBJECTS}")


def render_background(size: int, look: Look) -> np.ndarray:
    """The static part of a video: background colour and faint clutter blobs. float32 ``[S, S, 3]``."""
    x, y = _grid(size)
    img = np.empty((size, size, 3), np.float32)
    img[:] = look.background
    for cx, cy, r, col in look.clutter:
        w = _window(size, cx - r, cx + r, cy - r, cy + r)
        _paint(img[w], 0.35 * _alpha(np.hypot(x[w] - cx, y[w] - cy) - r, size), col)
    return img


def _paint_tool(img, x, y, size, motion: str, sx: float, sy: float, s: float, weight: float) -> None:
    """The tool of ``motion`` (:data:`MOTION_TOOLS`) held by a subject of size ``s`` centred at
    ``(sx, sy)``: a bar of length ``2 s`` with a knob at its tip, its coverage scaled by ``weight``."""
    angle, color = MOTION_TOOLS[motion]
    a = math.radians(angle)
    tx, ty = sx + 2.0 * s * math.cos(a), sy - 2.0 * s * math.sin(a)   # y grows downwards
    w = _window(size, min(sx, tx) - s, max(sx, tx) + s, min(sy, ty) - s, max(sy, ty) + s)
    x, y, img = x[w], y[w], img[w]
    sdf = np.minimum(_segment_sdf(x, y, sx, sy, tx, ty, 0.3 * s), np.hypot(x - tx, y - ty) - 0.6 * s)
    _paint(img, weight * _alpha(sdf, size), color)


def render_frame(size: int, subject: str, obj: str, st: State, look: Look, t: int,
                 rng: np.random.Generator, background: np.ndarray | None = None,
                 trail: tuple = (), motion: str | None = None) -> np.ndarray:
    """Draw frame ``t``: background and clutter, distractors, object, subject, occluder, noise.

    ``background`` is :func:`render_background`'s output (computed here when not given).
    ``trail`` (v2 motion blur): the states of the previous frames, latest first; the object, the
    subject and every distractor are also drawn where they were k frames ago, their coverage scaled
    by ``TRAIL_FADE ** k``, so that a single frame shows which way things move.
    ``motion`` (v2 phase cue): the motion of this frame's phase; with ``look.tool_alpha > 0`` the
    subject holds that motion's tool (:data:`MOTION_TOOLS`) at that opacity.
    Returns uint8 ``[size, size, 3]``.
    """
    x, y = _grid(size)
    img = (render_background(size, look) if background is None else background).copy()
    ghosts = [(k, past, TRAIL_FADE ** k) for k, past in enumerate(trail, 1)][::-1]   # oldest first
    for i, (shape, cx, cy, r, col, vx, vy) in enumerate(look.distractors):
        if look.distractor_tracks is None:   # v1: drawn without marker
            cx, cy = cx + vx * t, cy + vy * t
            w = _window(size, cx - 1.3 * r, cx + 1.3 * r, cy - 1.3 * r, cy + 1.3 * r)
            _paint(img[w], _alpha(shape_sdf(shape, x[w], y[w], cx, cy, r), size), col)
        else:
            track = look.distractor_tracks[i]
            for k, _, fade in ghosts:
                if not np.array_equal(track[t - k], track[t]):           # only what moved leaves a trail
                    tx, ty, angle, scale = track[t - k]
                    _paint_object(img, x, y, size, shape, tx, ty, r * scale, angle, col, fade)
            tx, ty, angle, scale = track[t]
            _paint_object(img, x, y, size, shape, tx, ty, r * scale, angle, col)
    for _, past, fade in ghosts:
        if (past.ox, past.oy, past.angle, past.scale) != (st.ox, st.oy, st.angle, st.scale):
            _paint_object(img, x, y, size, obj, past.ox, past.oy, look.obj_size * past.scale, past.angle,
                          look.obj_color, fade)
        if (past.sx, past.sy) != (st.sx, st.sy):
            _paint_subject(img, x, y, size, subject, past.sx, past.sy, look.subj_size, look.subj_color, fade)
    _paint_object(img, x, y, size, obj, st.ox, st.oy, look.obj_size * st.scale, st.angle, look.obj_color)
    _paint_subject(img, x, y, size, subject, st.sx, st.sy, look.subj_size, look.subj_color)
    if motion is not None and look.tool_alpha > 0:
        _paint_tool(img, x, y, size, motion, st.sx, st.sy, look.subj_size, look.tool_alpha)
    if look.occluder is not None:
        x0, width, vx, col = look.occluder
        cx = x0 + vx * t
        w = _window(size, cx - width / 2, cx + width / 2, 0.0, 1.0)
        _paint(img[w], _alpha(np.abs(x[w] - cx) - width / 2, size), col)
    if look.noise > 0:
        img += rng.normal(0.0, look.noise, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
