"""Replayed pairs that look like the corrections get more weight; the replay's total stays."""

from __future__ import annotations

import numpy as np
import pytest

from medloop.services.lookalikes import appearance, lookalike_weights


def _z(x: np.ndarray) -> np.ndarray:
    return ((x - x.mean()) / x.std()).astype(np.float32)


def _bright_field(seed: int, channels: int = 1, shape: tuple[int, ...] = (64, 64)) -> np.ndarray:
    """Dark nuclei on a bright background, z-scored: a long tail below the median."""
    rng = np.random.default_rng(seed)
    img = rng.normal(200, 5, (channels, *shape))
    img[(slice(None), *(slice(10, 20),) * len(shape))] = 60
    img[(slice(None), *(slice(30, 38),) * len(shape))] = 70
    return _z(img)


def _fluorescence(seed: int, channels: int = 1, shape: tuple[int, ...] = (64, 64)) -> np.ndarray:
    """Bright nuclei on a dark background: the tail above."""
    return -_bright_field(seed, channels, shape)


def test_the_description_tells_a_bright_background_from_a_dark_one() -> None:
    a, b, c = (
        appearance(_bright_field(1)),
        appearance(_bright_field(2)),
        appearance(_fluorescence(3)),
    )
    assert a.shape == (7,)
    assert np.linalg.norm(a - b) < 0.2 * np.linalg.norm(a - c)
    assert appearance(_bright_field(1, channels=3, shape=(8, 16, 16))).shape == (21,)


def test_the_lookalikes_get_the_weight_and_the_mean_stays_one() -> None:
    replay = [_fluorescence(i) for i in range(18)] + [_bright_field(100), _bright_field(101)]
    corrections = [_bright_field(200), _bright_field(201)]
    w = lookalike_weights(corrections, replay, share=0.1, weight=8.0)
    assert w.shape == (20,)
    assert (w[18:] == 8.0).all()
    assert np.allclose(w[:18], (20 - 16) / 18)
    assert w.mean() == pytest.approx(1.0)


def test_off_or_nothing_to_compare_leaves_every_weight_one() -> None:
    replay = [_fluorescence(i) for i in range(5)]
    assert (lookalike_weights([_bright_field(0)], replay, share=0.0, weight=8.0) == 1).all()
    assert (lookalike_weights([], replay, share=0.1, weight=8.0) == 1).all()
    assert lookalike_weights([_bright_field(0)], [], share=0.1, weight=8.0).shape == (0,)


def test_a_replay_too_small_for_one_lookalike_keeps_weight_one() -> None:
    """A tenth of 9 pairs is no whole pair; a tenth of 10 is one, and the other 9 share
    what it takes beyond 1."""
    replay = [_fluorescence(i) for i in range(9)] + [_bright_field(2)]
    assert (lookalike_weights([_bright_field(9)], replay[:9], share=0.1, weight=4.0) == 1).all()
    w = lookalike_weights([_bright_field(9)], replay, share=0.1, weight=4.0)
    assert w[9] == 4.0 and np.allclose(w[:9], 6 / 9)


def test_no_pair_nearer_than_the_rest_no_lookalike() -> None:
    """A replay whose pairs all lie as far from the corrections (shifted copies of one
    image: the same intensities) has no look-alike, whatever the share allows."""
    replay = [np.roll(_bright_field(1), 3 * i, axis=2) for i in range(20)]
    assert (lookalike_weights([_bright_field(99)], replay, share=0.2, weight=4.0) == 1).all()
    assert (lookalike_weights([_fluorescence(99)], replay, share=0.2, weight=4.0) == 1).all()


def test_only_the_near_ones_are_lookalikes_even_when_the_share_allows_more() -> None:
    replay = [_fluorescence(i) for i in range(18)] + [_bright_field(100), _bright_field(101)]
    w = lookalike_weights([_bright_field(200)], replay, share=0.2, weight=4.0)
    assert (w[18:] == 4.0).all() and np.allclose(w[:18], (20 - 8) / 18)


def test_a_share_and_weight_that_leave_the_rest_nothing_are_refused() -> None:
    replay = [_fluorescence(i) for i in range(10)]
    with pytest.raises(ValueError, match="no weight"):
        lookalike_weights([_bright_field(0)], replay, share=0.2, weight=5.0)
