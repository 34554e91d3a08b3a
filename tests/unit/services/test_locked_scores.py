"""Production's locked-set scores are recalled from its own record, and only where exact."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from medloop.domain.ports import PairSample
from medloop.services import candidates as candidates_module
from medloop.services.evaluation import SampleScore, evaluate_samples
from medloop.services.learning import Learner
from medloop.services.locked_scores import LOCKED_SCORES_FILE, encode, recall

from ...fakes import MemoryArtifactStore, disc_pair
from .test_learner import SETTINGS, _data

A = PairSample("a", "ia", "ma", "val", "g1")
B = PairSample("b", "ib", "mb", "val", None, frame=2)
SCORES = [
    SampleScore((0.5, 1.0), (0.3, 1.0), (np.nan, np.nan), "g1"),
    SampleScore((0.25, 0.0), (0.1, 0.0), (1.0, 2.0)),
]


def test_scores_come_back_for_the_same_images_only() -> None:
    data = encode([A, B], SCORES, "cpu")
    got = recall(data, [B, A], "cpu", 2)
    assert [g.dice if g else None for g in got] == [(0.25, 0.0), (0.5, 1.0)]
    assert got[1] is not None and got[1].iou == (0.3, 1.0) and got[1].group == "g1"
    assert got[0] is not None and np.isnan(got[0].hd95).all()  # not recorded: the gate skips it
    changed = [replace(A, mask_sha256="other"), replace(B, frame=0), replace(A, key="a2")]
    assert recall(data, changed, "cpu", 2) == [None, None, None]
    assert recall(data, [A, B], "cuda", 2) == [None, None]  # bf16 scores are not a CPU's
    assert recall(data, [A, B], "cpu", 1) == [None, None]  # another label set
    assert recall(b"{not json", [A], "cpu", 2) == [None]
    assert recall(json.dumps({"format": 99}).encode(), [A], "cpu", 2) == [None]
    doc = json.loads(data)
    del doc["images"][1]["dice"]  # one entry damaged: nothing is trusted
    assert recall(json.dumps(doc).encode(), [A, B], "cpu", 2) == [None, None]
    doc["images"] = "not a list"
    assert recall(json.dumps(doc).encode(), [A], "cpu", 2) == [None]
    with pytest.raises(ValueError, match="1 samples but 2 scores"):
        encode([A], SCORES, "cpu")


def test_the_gate_scores_production_only_on_locked_images_it_has_no_record_of(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, store = _data(n_val=6), MemoryArtifactStore()
    learner = Learner(SETTINGS, data, store, device="cpu")
    assert learner.train().promoted
    assert LOCKED_SCORES_FILE in store.get("v0001").files
    locked = learner.reference_split().locked
    assert len(locked) >= 2

    scored: list[list[str]] = []
    real = candidates_module.score_samples

    def counting(predictor, samples, cache, hd95=False):  # type: ignore[no-untyped-def]
        scored.append([s.key for s in samples])
        return real(predictor, samples, cache, hd95)

    monkeypatch.setattr(candidates_module, "score_samples", counting)
    rng = np.random.default_rng(4)
    data.add_correction(*disc_pair(rng))
    out = learner.finetune()
    # the candidate's own locked scores, and none of production's: all were recalled
    assert scored == [[s.key for s in locked]]
    report = store.get(out.version).report
    assert report is not None and report["production"]["locked_recalled"] == len(locked)
    # what scoring production again would have given
    fresh, _ = evaluate_samples(learner.predictor("v0001"), locked, learner.cache)
    assert report["production"]["locked_val"]["dice"] == pytest.approx(list(fresh.dice), abs=1e-12)

    # A new locked image (the reference data grew): only it is scored for production.
    production = store.production()
    key = next(k for k in (f"r-new{i}" for i in range(100)) if _locked_key(k))
    data.add_reference(key, *disc_pair(rng), split="val")
    data.add_correction(*disc_pair(rng))
    scored.clear()
    out = learner.finetune()
    new_locked = learner.reference_split().locked
    assert {s.key for s in new_locked} == {s.key for s in locked} | {key}  # the rest stayed
    assert scored == [[s.key for s in new_locked], [key]]
    report = store.get(out.version).report
    assert report is not None and report["against"] == production
    assert report["production"]["locked_recalled"] == len(locked)


def _locked_key(key: str) -> bool:
    """Whether a validation pair of this key falls in the locked half."""
    from medloop.services.splits import split_reference

    pairs = [PairSample("t", "i", "m", "train"), PairSample(key, "i", "m", "val")]
    pairs += [PairSample(f"v{i}", "i", "m", "val") for i in range(20)]
    return key in {s.key for s in split_reference(pairs).locked}
