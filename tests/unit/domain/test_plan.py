"""The planner's rules, one case each, on fingerprints written by hand."""

from __future__ import annotations

import math

import pytest

from medloop.domain.fingerprint import ClassStats, Fingerprint
from medloop.domain.plan import (
    MIN_STEPS,
    Candidate,
    candidates,
    choose,
    relative_cost,
    resolution,
)
from medloop.domain.settings import TrainingOptions
from medloop.errors import ConfigError


def _fp(
    shape: tuple[float, ...],
    extent_p90: float,
    thickness: float,
    gap: float = 200.0,
    spacing: tuple[float, ...] | None = None,
    single_share: float = 0.9,
) -> Fingerprint:
    dims = len(shape)
    return Fingerprint(
        n_images=20,
        spatial_dims=dims,
        shape_median=shape,
        shape_min=tuple(int(s) for s in shape),
        shape_max=tuple(int(s) for s in shape),
        spacing_median=spacing,
        channels=1,
        has_color=False,
        intensity=(0.0, 100.0, 255.0),
        foreground_intensity=(10.0, 250.0, 120.0, 40.0),
        ct_like=False,
        empty_share=0.05,
        gap=gap,
        classes=(
            ClassStats(
                1,
                0.95,
                1.0,
                single_share,
                (extent_p90 / 4, extent_p90 / 2, extent_p90),
                thickness,
                500.0,
            ),
        ),
    )


def test_a_large_lesion_is_shrunk_to_fit_the_patch() -> None:
    # Ultrasound: lesions reach 400 px at native resolution in 570 x 480 images.
    res = resolution(_fp((570, 480), 400, 60), 128, TrainingOptions())
    assert res.scale[0] == pytest.approx(0.21875)  # 0.75 * 128 / 400 = 0.24, snapped down
    assert 400 * res.scale[0] <= 0.75 * 128
    assert "shrink" in res.reasons[0]


def test_thin_membranes_keep_native_resolution() -> None:
    # EM: cells are large, but the membranes between them are 4 px wide.
    res = resolution(_fp((512, 512), 300, 40, gap=4), 128, TrainingOptions())
    assert res.scale == (1.0, 1.0)


def test_small_objects_keep_native_resolution() -> None:
    res = resolution(_fp((256, 256), 30, 10), 128, TrainingOptions())
    assert res.scale == (1.0, 1.0) and "native" in res.reasons[0]


def test_a_volume_that_fits_the_patch_is_not_shrunk() -> None:
    fp = _fp((36, 50, 35), 40, 3, spacing=(1.0, 1.0, 1.0))
    res = resolution(fp, 48, TrainingOptions())
    assert res.scale == (1.0, 1.0, 1.0) and res.target_spacing == (1.0, 1.0, 1.0)


def test_lesions_in_mm_give_a_target_spacing() -> None:
    # 0.1 mm pixels, lesions 400 px = 40 mm: a coarser target spacing, in mm.
    res = resolution(_fp((800, 800), 400, 80, spacing=(0.1, 0.1)), 128, TrainingOptions())
    assert res.target_spacing is not None
    assert res.target_spacing[0] == pytest.approx(0.1 / res.scale[0])


def test_the_user_can_force_the_resolution() -> None:
    res = resolution(_fp((570, 480), 400, 60), 128, TrainingOptions(scale=0.5))
    assert res.scale == (0.5, 0.5) and res.reasons == ("resolution set by the user",)


def test_thick_slices_are_pooled_in_plane_first() -> None:
    fp = _fp((256, 256, 40), 60, 5, spacing=(0.8, 0.8, 5.0))
    options = candidates(fp, TrainingOptions())
    _, cand = options[0]
    assert cand.strides[0] == (2, 2, 1)  # 0.8 mm in-plane vs 5 mm slices
    assert all(p % d == 0 for p, d in zip(cand.patch_size, cand.divisors, strict=True))


def test_candidates_go_from_fine_to_coarse_and_large_to_small_and_fit_their_network() -> None:
    options = candidates(_fp((570, 480), 400, 60), TrainingOptions())
    scales = [res.scale[0] for res, _ in options]
    assert scales == sorted(scales, reverse=True) and scales[0] > scales[-1]
    for s in set(scales):
        costs = [relative_cost(c) for res, c in options if res.scale[0] == s]
        assert costs == sorted(costs, reverse=True)
    at_native = candidates(_fp((256, 256), 20, 5), TrainingOptions())
    costs = [relative_cost(c) for _, c in at_native]
    assert {res.scale for res, _ in at_native} == {(1.0, 1.0)}
    assert costs == sorted(costs, reverse=True)
    for _, c in options:
        assert all(p % d == 0 for p, d in zip(c.patch_size, c.divisors, strict=True))
        assert min(p // d for p, d in zip(c.patch_size, c.divisors, strict=True)) >= 4


def test_user_channels_and_patch_are_kept() -> None:
    options = candidates(_fp((64, 64), 20, 5), TrainingOptions(patch_size=(32,), channels=(8, 16)))
    assert [(c.patch_size, c.channels) for _, c in options] == [((32, 32), (8, 16))]


def _cand(side: int) -> Candidate:
    return Candidate((side, side), (16, 32), ((2, 2),), 8)


def test_choose_takes_the_largest_network_with_enough_steps() -> None:
    cands = [_cand(256), _cand(128), _cand(64)]
    cand, steps, sps, why = choose(cands, [1.0, 0.2, 0.05], 300.0, 2)
    assert cand.patch_size == (128, 128) and steps == 1500 and sps == 0.2
    assert "1500 steps" in why


def test_choose_falls_back_to_the_smallest_and_says_so() -> None:
    cand, steps, _, why = choose([_cand(256), _cand(128)], [math.inf, 1.0], 300.0, 2)
    assert cand.patch_size == (128, 128) and steps == 300 < MIN_STEPS[2]
    assert "only 300 steps" in why


def test_a_budget_that_cannot_fit_one_step_is_refused() -> None:
    with pytest.raises(ConfigError, match="raise the budget"):
        choose([_cand(64)], [20.0], 10.0, 2)
    with pytest.raises(ConfigError, match="fits 10 steps"):
        choose([_cand(64)], [1.0], 10.0, 2)


def test_fixed_steps_win_over_the_budget() -> None:
    _, steps, _, why = choose([_cand(64)], [0.5], 30.0, 2, fixed_steps=7)
    assert steps == 7 and "set by the user" in why


def test_fixed_steps_pick_the_largest_network_that_does_them_in_the_budget() -> None:
    cand, steps, _, _ = choose([_cand(256), _cand(128)], [1.0, 0.1], 300.0, 2, fixed_steps=1000)
    assert cand.patch_size == (128, 128) and steps == 1000


def test_a_finer_resolution_needs_fewer_steps_than_the_coarsest() -> None:
    from medloop.domain.plan import MIN_STEPS_FINER, steps_needed

    # BUSI-like: 256-px patches at x0.47, 192 at x0.34, 128 at x0.22 (twice: two widths)
    scales = [(0.47, 0.47), (0.34, 0.34), (0.22, 0.22), (0.22, 0.22)]
    assert steps_needed(scales, 2) == [MIN_STEPS_FINER[2]] * 2 + [MIN_STEPS[2]] * 2
    # nuclei, membranes: every candidate at native resolution keeps the full requirement
    assert steps_needed([(1.0, 1.0)] * 3, 3) == [MIN_STEPS[3]] * 3
    assert steps_needed(scales, 2, fixed_steps=50) == [50] * 4
    assert steps_needed(scales, 2, interactive=True) == [MIN_STEPS[2]] * 4  # clicks need steps


def test_a_finer_resolution_also_offers_a_shallower_network_which_needs_fewest_steps() -> None:
    from medloop.domain.plan import MIN_STEPS_FINER, MIN_STEPS_LEAST, steps_needed

    options = candidates(_fp((570, 480), 400, 60), TrainingOptions())  # BUSI-like
    coarsest = min(res.scale[0] for res, _ in options)
    for scale in {res.scale[0] for res, _ in options}:
        nets = [c.channels for res, c in options if res.scale[0] == scale]
        if scale > coarsest:  # e.g. 256 px at x0.47: 32..512, 16..512 and 16..256
            assert len(nets) == 3 and nets[2] == nets[1][:-1] and nets[2][0] == 16
        else:
            assert len(nets) == 2 and len(nets[0]) == len(nets[1])
    costs = [relative_cost(c) for _, c in options]
    needs = steps_needed([res.scale for res, _ in options], 2, costs=costs)
    first = [n for (res, _), n in zip(options, needs, strict=True) if res == options[0][0]]
    assert first == [MIN_STEPS_FINER[2], MIN_STEPS_FINER[2], MIN_STEPS_LEAST[2]]
    assert needs[-1] == MIN_STEPS[2]
    # A click-guided model's candidates stay as they were.
    guided = candidates(_fp((570, 480), 400, 60), TrainingOptions(interactive=True))
    assert len(guided) == len(options) - sum(res.scale[0] > coarsest for res, _ in options) // 3
    assert all(len(c.channels) == len(c.strides) + 1 == 6 for _, c in guided[:2])
    # At native resolution nothing is finer: no shallower network, the full requirement.
    at_native = candidates(_fp((256, 256), 20, 5), TrainingOptions())
    for patch in {c.patch_size for _, c in at_native}:
        nets = [c.channels for _, c in at_native if c.patch_size == patch]
        assert len(nets) == 2 and len(nets[0]) == len(nets[1])
    # A slower machine keeps the resolution with the shallower network (400 steps in
    # 200 s) rather than shrinking further; a faster one takes the deeper network.
    cands = [c for _, c in options]
    slow = choose(cands, [1.0, 0.6, 0.5] + [0.2] * (len(cands) - 3), 200.0, 2, needs=needs)
    assert slow[0] == cands[2] and slow[1] == 400
    fast = choose(cands, [1.0, 0.3, 0.25] + [0.1] * (len(cands) - 3), 200.0, 2, needs=needs)
    assert fast[0] == cands[1] and fast[1] == 666


def test_choose_takes_a_finer_resolution_with_fewer_steps() -> None:
    from medloop.domain.plan import steps_needed

    cands = [_cand(256), _cand(128)]
    needs = steps_needed([(0.47, 0.47), (0.22, 0.22)], 2)
    # 0.4 s per step buys 750 steps of the 256-px patch at x0.47: enough at that scale
    cand, steps, _, why = choose(cands, [0.4, 0.25], 300.0, 2, needs=needs)
    assert cand.patch_size == (256, 256) and steps == 750 and ">= 600 steps" in why
    # 0.6 s buys 500: too few even there, so the coarser patch with 1200 steps
    cand, steps, _, why = choose(cands, [0.6, 0.25], 300.0, 2, needs=needs)
    assert cand.patch_size == (128, 128) and steps == 1200 and ">= 1000 steps" in why


def test_an_axis_with_a_direction_is_not_flipped() -> None:
    from dataclasses import replace

    from medloop.domain.flips import ORIENTED, mirror_axes

    fp = _fp((570, 480), 400, 60)
    assert mirror_axes(fp) == ((0, 1), None)  # not measured (older fingerprints): all axes
    axes, why = mirror_axes(replace(fp, profile_asymmetry=(0.73, 0.07)))
    assert axes == (1,) and why is not None and "axis [0]" in why and "0.73" in why
    assert mirror_axes(replace(fp, profile_asymmetry=(ORIENTED, 0.1)))[0] == (0, 1)
    vol = replace(_fp((40, 56, 40), 26, 2), profile_asymmetry=(0.11, 0.06, 0.22))
    assert mirror_axes(vol) == ((0, 1, 2), None)  # no direction in the intensities


def test_an_axis_along_which_the_labels_keep_one_order_is_not_flipped() -> None:
    from dataclasses import replace

    from medloop.domain.flips import LABEL_ORDERED, mirror_axes

    # The hippocampus: anterior before posterior along axes 1 and 2 always, along 0 in 97 %.
    vol = replace(
        _fp((36, 50, 35), 26, 2),
        profile_asymmetry=(0.11, 0.06, 0.22),
        label_order=(0.97, 1.0, 1.0),
    )
    axes, why = mirror_axes(vol)
    assert axes == ()
    assert why == (
        "the labels lie in a fixed order along axis [0, 1, 2] (same order in axis 0: 97%, "
        "axis 1: 100%, axis 2: 100% of the images): no flips along it, "
        "and no 90-degree rotations"
    )
    # Below the threshold the order is not a rule; an unordered third axis keeps rotations.
    loose = replace(vol, label_order=(LABEL_ORDERED - 0.01, 0.5, 1.0))
    axes, why = mirror_axes(loose)
    assert axes == (0, 1) and why is not None and why.endswith("no flips along it")
    # Both reasons at once name each axis once, under its own reason.
    both = replace(vol, profile_asymmetry=(0.73, 0.0, 0.0), label_order=(1.0, 1.0, 0.5))
    axes, why = mirror_axes(both)
    assert axes == (2,) and why is not None
    assert "direction along axis [0]" in why and "fixed order along axis [1]" in why


def test_the_user_sets_the_flip_axes() -> None:
    from dataclasses import replace

    from medloop.domain.flips import mirror_axes

    fp = replace(_fp((570, 480), 400, 60), profile_asymmetry=(0.73, 0.07))
    assert mirror_axes(fp, TrainingOptions(flip_axes=(1, 0))) == ((0, 1), "flips set by the user")
    assert mirror_axes(fp, TrainingOptions(flip_axes=()))[0] == ()
    with pytest.raises(ConfigError, match=r"flip axes \[2\] do not exist in 2D"):
        mirror_axes(fp, TrainingOptions(flip_axes=(2,)))
    with pytest.raises(ValueError, match="twice"):
        TrainingOptions(flip_axes=(1, 1))
