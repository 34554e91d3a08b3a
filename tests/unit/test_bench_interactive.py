"""The clicks-to-Dice figures: NoC and Dice after k clicks, from a simulated clinician."""

from __future__ import annotations

import numpy as np
import pytest

from medloop.bench.interactive import MAX_CLICKS, ClickCurve


def test_noc_counts_clicks_to_the_target_and_twenty_where_never_reached() -> None:
    dice = np.zeros((3, MAX_CLICKS + 1))
    dice[0, :] = 0.9  # the automatic prediction is good enough already
    dice[1, 2:] = 0.86  # two clicks to 85 %, never 90 %
    dice[2, 5:] = 0.95
    curve = ClickCurve(dice, [0.01, 0.03])
    assert curve.noc(0.85) == (0 + 2 + 5) / 3
    assert curve.noc(0.90) == (0 + MAX_CLICKS + 5) / 3
    summary = curve.summary()
    assert summary["dice_3"] == (0.9 + 0.86 + 0) / 3 and summary["images"] == 3
    assert summary["seconds_per_click_p50"] == 0.02
    assert summary["never85"] == 0.0 and summary["never90"] == pytest.approx(1 / 3)


def test_on_a_volume_each_click_answers_the_window_around_it_as_the_server_does() -> None:
    """The benchmark measures the server's volume refine: each click recomputes the
    answered window around it (:meth:`RefineSession.refine_block`) and pastes it into the
    current labels; the rest keeps the answers of earlier clicks."""
    from types import SimpleNamespace

    from medloop.bench.interactive import click_curve
    from medloop.domain.clicks import Guidance
    from medloop.domain.image import Image
    from medloop.domain.labels import LabelSet
    from medloop.domain.model import GuidanceSpec, ModelManifest, NetworkSpec, PreprocessSpec
    from medloop.ml.guidance import next_click
    from medloop.ml.inference import Predictor
    from medloop.ml.interactive import RefineSession
    from medloop.ml.network import build_network
    from medloop.services.evaluation import per_label_dice

    spec = GuidanceSpec()
    manifest = ModelManifest(
        NetworkSpec(1 + spec.channels(1), 2, (4, 8), spatial_dims=3),
        PreprocessSpec(),
        LabelSet.from_names(["organ"]),
        (16, 16, 16),
        guidance=spec,
    )
    predictor = Predictor(manifest, build_network(manifest.network).state_dict(), "cpu")
    rng = np.random.default_rng(3)
    image = Image(rng.normal(100, 15, (40, 36, 24, 1)).astype(np.float32))
    mask = np.zeros((40, 36, 24), np.uint8)
    mask[8:30, 6:28, 5:19] = 1
    cache = SimpleNamespace(pair=lambda sample: SimpleNamespace(image=image, mask=mask))
    curve = click_curve(predictor, [object()], cache, max_clicks=4)  # type: ignore[list-item,arg-type]

    labels = predictor.predict(image).label_map
    session = RefineSession(predictor, image, labels)
    expected, clicks = [per_label_dice(labels, mask, 1)], []
    for _ in range(4):
        click = next_click(labels, mask, 1)
        assert click is not None
        clicks.append(click)
        block = session.refine_block(Guidance(tuple(clicks)), Guidance((click,)))
        assert all(w.stop - w.start < s for w, s in zip(block.window, mask.shape, strict=True))
        labels = labels.copy()
        labels[block.window] = block.labels
        expected.append(per_label_dice(labels, mask, 1))
    assert curve.dice.shape == (1, 5)
    np.testing.assert_allclose(curve.dice[0], expected)
