"""N-way K-shot episodes: seeded, reproducible, and addressable one by one.

Episode ``i`` of a sampler is drawn from ``numpy.random.default_rng([seed, i])``, so it depends on
the seed and its index alone: every method evaluated with the same seed sees exactly the same
episodes, in any order, in any batch size, and a resumed run continues with the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Episode:
    """One task. Indices point into the video list the sampler was built on.

    classes:        int64 ``[N]``       dataset labels of the N classes, in episode-label order
    support:        int64 ``[N*K]``     video indices, class-major (class 0's K shots first)
    support_labels: int64 ``[N*K]``     episode labels 0..N-1
    query:          int64 ``[N*Q]``     video indices, class-major
    query_labels:   int64 ``[N*Q]``     episode labels 0..N-1
    """

    classes: np.ndarray
    support: np.ndarray
    support_labels: np.ndarray
    query: np.ndarray
    query_labels: np.ndarray


class EpisodeSampler:
    """Draws N-way K-shot episodes with Q queries per class from a labelled list of videos.

    Args:
        labels: ``[V]`` class label of every video.
        n_way, k_shot, q_query: N, K, Q. Support and query videos of an episode are disjoint.
        seed: the episodes are a function of (seed, index).
        num_episodes: length when iterated.

    Classes with fewer than K + Q videos cannot appear; they are listed in ``self.too_small``.
    """

    def __init__(self, labels, n_way: int = 5, k_shot: int = 1, q_query: int = 1, seed: int = 0,
                 num_episodes: int = 1000):
        labels = np.asarray(labels, dtype=np.int64)
        if labels.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
        if min(n_way, k_shot, q_query) < 1:
            raise ValueError(f"n_way, k_shot and q_query must be >= 1, got {n_way}, {k_shot}, {q_query}")
        self.n_way, self.k_shot, self.q_query = n_way, k_shot, q_query
        self.seed, self.num_episodes = seed, num_episodes
        classes = np.unique(labels)
        self.by_class = {int(c): np.flatnonzero(labels == c) for c in classes}
        self.too_small = [c for c, idx in self.by_class.items() if len(idx) < k_shot + q_query]
        self.classes = np.array([c for c in self.by_class if c not in self.too_small], dtype=np.int64)
        if len(self.classes) < n_way:
            raise ValueError(f"{n_way}-way {k_shot}-shot episodes with {q_query} queries need {n_way} "
                             f"classes with >= {k_shot + q_query} videos; only {len(self.classes)} have that")

    def episode(self, index: int) -> Episode:
        """Episode number ``index`` (any non-negative integer)."""
        rng = np.random.default_rng([self.seed, index])
        n, k, q = self.n_way, self.k_shot, self.q_query
        classes = rng.choice(self.classes, size=n, replace=False)
        support, query = [], []
        for c in classes:
            picked = rng.choice(self.by_class[int(c)], size=k + q, replace=False)
            support.append(picked[:k])
            query.append(picked[k:])
        return Episode(classes=classes, support=np.concatenate(support),
                       support_labels=np.repeat(np.arange(n), k),
                       query=np.concatenate(query), query_labels=np.repeat(np.arange(n), q))

    def batch(self, start: int, count: int) -> Episode:
        """Episodes ``start .. start+count-1`` stacked: every field gains a leading ``[E]`` axis."""
        eps = [self.episode(i) for i in range(start, start + count)]
        return Episode(*(np.stack([getattr(e, f) for e in eps]) for f in Episode.__dataclass_fields__))

    def __len__(self) -> int:
        return self.num_episodes

    def __iter__(self):
        return (self.episode(i) for i in range(self.num_episodes))
