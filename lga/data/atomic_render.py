"""AtomicActions, one video: the nuisances drawn for it (:func:`sample_look`, distractors) and its
frames (:func:`render_video`), drawn by :mod:`lga.data.scene`. Part of :mod:`lga.data.atomic_actions`,
which offers every name.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .atomic_design import ActionClass, AtomicActionsConfig
from .atomic_phases import _draw_bounds, _video_rng, variable_phase_bounds
from .scene import (MOTION_GRIPS, OBJECT_MOTIONS, OBJECTS, Look, fit_origin, object_track, phase_of,
                    render_background, render_frame, simulate)


_PALETTE = [(220, 60, 50), (60, 160, 70), (50, 90, 210), (235, 190, 40), (170, 70, 190),
            (240, 130, 40), (40, 180, 190), (230, 90, 150), (140, 200, 60), (120, 120, 230)]
_SUBJECT_COLOR = {"hand": (238, 190, 150), "claw": (120, 125, 135), "robot": (90, 150, 200)}


def sample_look(rng: np.random.Generator, cfg: AtomicActionsConfig, cls: ActionClass) -> Look:
    """Draw the nuisances of one video."""
    bg = tuple(float(v) for v in rng.uniform(20, 90, 3))
    obj_color = _PALETTE[rng.integers(len(_PALETTE))]
    base = _SUBJECT_COLOR[cls.subject]
    subj_color = tuple(float(np.clip(c + rng.uniform(-20, 20), 0, 255)) for c in base)
    clutter = [(float(rng.uniform()), float(rng.uniform()), float(rng.uniform(0.05, 0.2)),
                tuple(float(v) for v in rng.uniform(0, 255, 3)))
               for _ in range(rng.integers(cfg.max_clutter + 1))]
    others = [o for o in OBJECTS if o != cls.object]
    t = cfg.frames_per_video
    distractors = [(others[rng.integers(len(others))], float(rng.uniform(0.1, 0.9)),
                    float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.04, 0.07)),
                    _PALETTE[rng.integers(len(_PALETTE))],
                    float(rng.uniform(-0.15, 0.15) / t), float(rng.uniform(-0.15, 0.15) / t))
                   for _ in range(rng.integers(cfg.max_distractors + 1))]
    occluder = None
    if rng.uniform() < cfg.occlusion_prob:
        occluder = (float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.04, 0.09)),
                    float(rng.choice([-1, 1]) * rng.uniform(0.3, 0.8) / t),
                    tuple(float(v) for v in rng.uniform(40, 200, 3)))
    return Look(obj_size=float(rng.uniform(0.08, 0.12)), subj_size=float(rng.uniform(0.055, 0.075)),
                amplitude=float(rng.uniform(0.2, 0.32)), obj_color=obj_color, subj_color=subj_color,
                background=bg, clutter=clutter, distractors=distractors, occluder=occluder,
                noise=float(rng.uniform(0, cfg.max_noise)))


def distractor_tracks(rng: np.random.Generator, cfg: AtomicActionsConfig, look: Look) -> tuple:
    """v2: the path of every distractor of ``look``, float ``[F, 4]`` (x, y, angle, scale) each.

    With probability ``cfg.distractor_motion`` a distractor performs 2 or 3 object motions
    (:data:`lga.data.scene.OBJECT_MOTIONS`) in phases of its own (``phase_variability`` 0.5), at a
    smaller amplitude than the action; otherwise it drifts in a straight line as in v1.
    """
    F = cfg.frames_per_video
    t = np.arange(F)
    tracks = []
    for shape, x, y, r, col, vx, vy in look.distractors:
        if rng.uniform() < cfg.distractor_motion:
            n = int(rng.integers(2, 4))
            motions = [OBJECT_MOTIONS[rng.integers(len(OBJECT_MOTIONS))]]
            while len(motions) < n:
                m = OBJECT_MOTIONS[rng.integers(len(OBJECT_MOTIONS))]
                if m != motions[-1]:
                    motions.append(m)
            bounds = variable_phase_bounds(rng, F, n, 0.5, 1)
            own = replace(look, obj_size=r, amplitude=float(rng.uniform(0.1, 0.2)))
            tracks.append(object_track(motions, bounds, own, rng))
        else:
            tracks.append(np.stack([x + vx * t, y + vy * t, np.zeros(F), np.ones(F)], axis=1))
    return tuple(tracks)


def render_video(cls: ActionClass, cfg: AtomicActionsConfig, video_index: int):
    """Render one video of ``cls``. Returns (uint8 frames ``[T, S, S, 3]``, phase bounds ``[L+1]``)."""
    rng = _video_rng(cls, cfg, video_index)
    bounds = _draw_bounds(rng, cfg)
    look = sample_look(rng, cfg, cls)
    if cfg.version != "1.0":
        look = replace(look, distractor_tracks=distractor_tracks(rng, cfg, look))
    if cfg.version != "1.0" and cfg.grip_cues:
        look = replace(look, grips=MOTION_GRIPS)
    look, origin = fit_origin(cls.subject, list(cls.motions), bounds, look, rng)
    states = simulate(cls.subject, list(cls.motions), bounds, look, origin)
    background = render_background(cfg.size, look)
    if cfg.version != "1.0" and cfg.phase_cue > 0:
        look = replace(look, tool_alpha=float(cfg.phase_cue))
    blur = 0 if cfg.version == "1.0" else cfg.motion_blur
    frames = np.stack([render_frame(cfg.size, cls.subject, cls.object, st, look, t, rng, background,
                                    trail=tuple(states[max(0, t - blur):t][::-1]),
                                    motion=cls.motions[phase_of(t, bounds)[0]])
                       for t, st in enumerate(states)])
    return frames, bounds
