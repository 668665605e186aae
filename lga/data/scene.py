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


def _ease(u: float) -> float:
    """Smoothstep: motions start and stop gently."""
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def contact_point(subject: str, motion: str, st: State, size: float) -> tuple[float, float]:
    """Where the subject touches the object for ``motion`` (pushes come from the opposite side)."""
    gx, gy = _GRIP[subject]
    if motion == "push_left":
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
        tx, ty = contact_point(subject, "reach", start, look.obj_size)
        e = _ease(u)
        return replace(start, sx=start.sx + (tx - start.sx) * e, sy=start.sy + (ty - start.sy) * e)
    if motion == "withdraw":
        tx, ty = rest_point(subject, start)
        e = _ease(u)
        return replace(start, sx=start.sx + (tx - start.sx) * e, sy=start.sy + (ty - start.sy) * e)
    # contact motions: first move the subject into contact, then act on the object
    if u < _APPROACH:
        tx, ty = contact_point(subject, motion, start, look.obj_size)
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
    sx, sy = contact_point(subject, motion, obj, look.obj_size)
    if motion == "tap":  # the subject bounces off the object twice
        gx, gy = _GRIP[subject]
        lift = 0.12 * abs(math.sin(2 * math.pi * v))
        sx, sy = sx + gx * lift, sy + gy * lift
    if motion == "toss":  # the object leaves the subject's grip and comes back
        sx, sy = contact_point(subject, motion, start, look.obj_size)
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
        sx, sy = contact_point(subject, motions[0], st, look.obj_size)
    starts = [replace(st, sx=sx, sy=sy)]
    for m in motions:
        starts.append(step(m, subject, starts[-1], 1.0, look))
    states = []
    for f in range(bounds[-1]):
        p, u = phase_of(f, bounds)
        states.append(step(motions[p], subject, starts[p], u, look))
    return states


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
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(c, c)  # X [S,S] (x along columns), Y [S,S]


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
    img += alpha[..., None] * (np.asarray(color, np.float32) - img)


def render_background(size: int, look: Look) -> np.ndarray:
    """The static part of a video: background colour and faint clutter blobs. float32 ``[S, S, 3]``."""
    x, y = _grid(size)
    img = np.empty((size, size, 3), np.float32)
    img[:] = look.background
    for cx, cy, r, col in look.clutter:
        _paint(img, 0.35 * _alpha(np.hypot(x - cx, y - cy) - r, size), col)
    return img


def render_frame(size: int, subject: str, obj: str, st: State, look: Look, t: int,
                 rng: np.random.Generator, background: np.ndarray | None = None) -> np.ndarray:
    """Draw frame ``t``: background and clutter, distractors, object, subject, occluder, noise.

    ``background`` is :func:`render_background`'s output (computed here when not given).
    Returns uint8 ``[size, size, 3]``.
    """
    x, y = _grid(size)
    img = (render_background(size, look) if background is None else background).copy()
    for shape, cx, cy, r, col, vx, vy in look.distractors:
        _paint(img, _alpha(shape_sdf(shape, x, y, cx + vx * t, cy + vy * t, r), size), col)
    # the object, with a dark marker on its rim so that spinning is visible for every shape
    r = look.obj_size * st.scale
    _paint(img, _alpha(shape_sdf(obj, x, y, st.ox, st.oy, r, st.angle), size), look.obj_color)
    mx, my = st.ox + 0.5 * r * math.sin(st.angle), st.oy - 0.5 * r * math.cos(st.angle)
    _paint(img, 0.8 * _alpha(np.hypot(x - mx, y - my) - 0.22 * r, size), (20, 20, 20))
    # the subject
    s = look.subj_size
    if subject == "hand":   # a palm on an arm that reaches in from the bottom edge
        sdf = np.minimum(np.hypot(x - st.sx, y - st.sy) - s,
                         _segment_sdf(x, y, st.sx, st.sy, st.sx, 1.2, 0.45 * s))
        _paint(img, _alpha(sdf, size), look.subj_color)
    elif subject == "claw":  # a gripper on a rod hanging from the top edge, with two prongs
        sdf = np.minimum(_segment_sdf(x, y, st.sx, -0.2, st.sx, st.sy, 0.3 * s),
                         _box_sdf(x - st.sx, y - st.sy, 1.1 * s, 0.35 * s))
        for side in (-1, 1):
            sdf = np.minimum(sdf, _segment_sdf(x, y, st.sx + side * s, st.sy,
                                               st.sx + side * 0.8 * s, st.sy + 0.9 * s, 0.22 * s))
        _paint(img, _alpha(sdf, size), look.subj_color)
    elif subject == "robot":  # a free-floating square body with two eyes
        _paint(img, _alpha(_box_sdf(x - st.sx, y - st.sy, s, s) - 0.2 * s, size), look.subj_color)
        for side in (-1, 1):
            eye = np.hypot(x - (st.sx + side * 0.45 * s), y - (st.sy - 0.25 * s)) - 0.25 * s
            _paint(img, _alpha(eye, size), (250, 250, 250))
    else:
        raise ValueError(f"unknown subject {subject!r}; known: {SUBJECTS}")
    if look.occluder is not None:
        x0, w, vx, col = look.occluder
        cx = x0 + vx * t
        _paint(img, _alpha(np.abs(x - cx) - w / 2, size), col)
    if look.noise > 0:
        img += rng.normal(0.0, look.noise, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
