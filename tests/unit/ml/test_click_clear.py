"""A rejected blob goes whole: what negative clicks remove after the network's answer."""

from __future__ import annotations

import numpy as np
import torch

from medloop.domain.clicks import Box, Click, Guidance
from medloop.ml.click_clear import KEEP, clear_rejected

WHOLE = (slice(0, 30), slice(0, 40))


def _start() -> np.ndarray:
    """Two blobs of label 1: a false one (rows 2-9, cols 2-11) and a true one (15-26, 20-35)."""
    start = np.zeros((30, 40), np.uint8)
    start[2:10, 2:12] = 1
    start[15:27, 20:36] = 1
    return start


def _answer(start: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """The network removed all but a speck of the false blob and a rim of the true one."""
    labels = start.copy()
    labels[2:10, 2:12] = 0
    labels[2:4, 2:4] = 1  # a speck: 4 of 80 pixels kept
    labels[15:17, 20:36] = 0  # trimmed: 160 of 192 kept
    probs = torch.zeros(3, 30, 40)
    probs[0] = 0.6
    probs[2, 2:4, 2:4] = 0.9  # where the speck is, label 2 is the next most likely
    return labels, probs


def test_a_blob_the_network_mostly_removed_goes_whole_and_a_trimmed_one_stays() -> None:
    start = _start()
    labels, probs = _answer(start)
    answered = labels.copy()
    no = Guidance((Click((5.0, 6.0), 1, positive=False), Click((16.0, 28.0), 1, positive=False)))
    clear_rejected(labels, start, probs, WHOLE, no, 2)
    assert KEEP * 80 > 4 and KEEP * 192 <= 160
    assert (labels[2:10, 2:12] != 1).all()  # the speck went...
    assert (labels[2:4, 2:4] == 2).all()  # ...to the most likely other label
    assert np.array_equal(labels[12:], answered[12:])  # the trimmed true blob as answered


def test_a_label_with_a_positive_click_or_a_box_keeps_the_networks_answer() -> None:
    start = _start()
    negative = Click((5.0, 6.0), 1, positive=False)
    for guidance in [
        Guidance((negative, Click((20.0, 25.0), 1))),
        Guidance((negative,), Box((14.0, 19.0), (27.0, 36.0), 1)),
    ]:
        labels, probs = _answer(start)
        answered = labels.copy()
        clear_rejected(labels, start, probs, WHOLE, guidance, 2)
        assert np.array_equal(labels, answered)


def test_clicks_off_the_start_blobs_or_outside_the_window_change_nothing() -> None:
    start = _start()
    labels, probs = _answer(start)
    answered = labels.copy()
    window = (slice(12, 30), slice(0, 40))  # the answer recomputed rows 12-29 only
    guidance = Guidance((Click((5.0, 6.0), 1, False), Click((13.0, 5.0), 1, False)))
    clear_rejected(labels, start, probs[:, 12:], window, guidance, 2)
    assert np.array_equal(labels, answered)  # one click outside, one on background
    other = Guidance((Click((5.0, 6.0), 2, positive=False),))  # label 2 has no blob there
    clear_rejected(labels, start, probs, WHOLE, other, 2)
    assert np.array_equal(labels, answered)
