"""The episodic sampler: shapes, labels, disjointness, reproducibility, and bad requests."""

import numpy as np
import pytest

from lga.data.episodes import EpisodeSampler

LABELS = np.repeat(np.arange(12), 10)          # 12 classes x 10 videos
LABELS = np.concatenate([LABELS, [12, 12]])    # one class too small for 5-shot + 1 query


@pytest.mark.parametrize("n,k,q", [(5, 1, 1), (5, 5, 3), (3, 2, 4)])
def test_shapes_labels_and_disjointness(n, k, q):
    s = EpisodeSampler(LABELS, n, k, q, seed=0)
    for i in range(50):
        ep = s.episode(i)
        assert ep.support.shape == ep.support_labels.shape == (n * k,)
        assert ep.query.shape == ep.query_labels.shape == (n * q,)
        assert len(set(ep.classes.tolist())) == n
        assert not set(ep.support.tolist()) & set(ep.query.tolist())
        assert len(set(ep.support.tolist())) == n * k and len(set(ep.query.tolist())) == n * q
        np.testing.assert_array_equal(ep.support_labels, np.repeat(np.arange(n), k))
        np.testing.assert_array_equal(ep.query_labels, np.repeat(np.arange(n), q))
        # episode labels point at the right dataset classes
        np.testing.assert_array_equal(LABELS[ep.support], ep.classes[ep.support_labels])
        np.testing.assert_array_equal(LABELS[ep.query], ep.classes[ep.query_labels])


def test_reproducible_and_index_addressable():
    a, b = EpisodeSampler(LABELS, seed=3), EpisodeSampler(LABELS, seed=3)
    for i in (0, 17, 999):
        ea, eb = a.episode(i), b.episode(i)
        for f in ("classes", "support", "query"):
            np.testing.assert_array_equal(getattr(ea, f), getattr(eb, f))
    batch = a.batch(10, 5)
    assert batch.support.shape == (5, 5)
    for j in range(5):
        np.testing.assert_array_equal(batch.query[j], a.episode(10 + j).query)
    other = EpisodeSampler(LABELS, seed=4)
    assert any(not np.array_equal(a.episode(i).support, other.episode(i).support) for i in range(5))
    assert len(list(EpisodeSampler(LABELS, num_episodes=7))) == 7


def test_classes_are_used_evenly():
    s = EpisodeSampler(LABELS, 5, 1, 1, seed=0)
    counts = np.bincount(np.concatenate([s.episode(i).classes for i in range(2600)]), minlength=13)
    expected = 2600 * 5 / 13                     # all 13 classes have >= 2 videos
    assert np.all(np.abs(counts - expected) < 0.15 * expected), counts
    s2 = EpisodeSampler(LABELS, 5, 5, 1, seed=0)  # class 12 (2 videos) cannot give 5 shots + 1 query
    assert s2.too_small == [12] and 12 not in s2.classes
    assert not any(12 in s2.episode(i).classes for i in range(500))


def test_not_enough_classes():
    with pytest.raises(ValueError, match="need 5 classes"):
        EpisodeSampler(np.repeat(np.arange(4), 10), 5, 1, 1)
    with pytest.raises(ValueError, match=">= 1"):
        EpisodeSampler(LABELS, 5, 0, 1)
