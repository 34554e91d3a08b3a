"""Every click holds in a refined answer, and the correction reaches only unsure voxels."""

from __future__ import annotations

import numpy as np
import torch

from medloop.domain.clicks import Click
from medloop.ml.click_hold import MARGIN, hold_clicks


def _probs(fg: np.ndarray) -> torch.Tensor:
    """Two-class softmax ``(2, *shape)`` from a foreground probability map."""
    p = torch.from_numpy(fg.astype(np.float32))
    return torch.stack([1 - p, p])


def test_clicks_the_network_already_follows_change_nothing() -> None:
    fg = np.full((20, 20), 0.1)
    fg[5:15, 5:15] = 0.9
    probs = _probs(fg)
    clicks = [Click((10.0, 10.0), 1, True), Click((1.0, 1.0), 1, False)]
    assert hold_clicks(probs, clicks, sigma=2.0) is probs


def test_a_positive_click_flips_its_voxel_and_only_unsure_neighbours() -> None:
    fg = np.full((30, 30), 0.001)  # confident background ...
    fg[8:13, 8:13] = 0.3  # ... except an unsure patch around the click
    out = hold_clicks(_probs(fg), [Click((10.0, 10.0), 1, True)], sigma=2.0)
    labels = out.argmax(0).numpy()
    assert labels[10, 10] == 1
    log_odds = torch.log(out[1, 10, 10] / out[0, 10, 10]).item()
    assert abs(log_odds - MARGIN) < 1e-3  # just enough, not more
    assert labels[9, 10] == 1 and labels[10, 11] == 1  # unsure and near: follows
    assert labels[10, 13] == 0 and labels[6, 10] == 0  # confident: stays
    assert (labels[20:, :] == 0).all() and np.allclose(out[1, 20:].numpy(), 0.001, atol=1e-6)
    assert torch.allclose(out.sum(0), torch.ones(30, 30), atol=1e-5)


def test_a_negative_click_removes_its_label_in_a_volume() -> None:
    fg = np.zeros((12, 12, 12))
    fg[3:9, 3:9, 3:9] = 0.6
    out = hold_clicks(_probs(fg), [Click((6.0, 6.0, 6.0), 1, False)], sigma=1.5)
    labels = out.argmax(0).numpy()
    assert labels[6, 6, 6] == 0 and labels[3, 3, 3] == 1  # a corner of the object stays


def test_a_negative_click_of_one_label_hands_the_voxel_to_the_next_best() -> None:
    p = torch.tensor([0.1, 0.6, 0.3])[:, None, None].repeat(1, 9, 9)
    out = hold_clicks(p, [Click((4.0, 4.0), 1, False)], sigma=1.0)
    assert out[:, 4, 4].argmax().item() == 2


def test_the_later_click_wins_on_the_same_voxel_and_clicks_outside_are_left_out() -> None:
    probs = _probs(np.full((10, 10), 0.5))
    both = [Click((5.0, 5.0), 1, True), Click((5.0, 5.0), 1, False)]
    assert hold_clicks(probs, both, sigma=1.0).argmax(0)[5, 5].item() == 0
    assert hold_clicks(probs, both[::-1], sigma=1.0).argmax(0)[5, 5].item() == 1
    outside = [Click((-3.0, 5.0), 1, True), Click((5.0, 12.0), 1, True)]
    assert hold_clicks(probs, outside, sigma=1.0) is probs
