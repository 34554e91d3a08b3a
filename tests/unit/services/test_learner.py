"""The learning engine on in-memory ports: it trains, fine-tunes, gates and records, with no files."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medloop.domain.labels import LabelSet
from medloop.domain.model import VersionStatus
from medloop.domain.settings import LearningPolicy, ProjectSettings, Strategy, TrainingOptions
from medloop.errors import DatasetError, NoProductionModel, TrainingError, TrainingInterrupted
from medloop.ml.trainer import TrainCallbacks
from medloop.services.learning import Learner

from ...fakes import MemoryArtifactStore, MemoryTrainingData, disc_pair

TINY = TrainingOptions(
    steps=30, patch_size=(32,), channels=(8, 16), batch_size=4, lr=3e-3, val_every=15
)
SETTINGS = ProjectSettings(
    labels=LabelSet.from_names(["disc"]).labels,
    training=TINY,
    learning=LearningPolicy(steps=10, replay_size=3, correction_weight=8.0, held_out_share=0.5),
)


def _data(n_train: int = 6, n_val: int = 4, seed: int = 0) -> MemoryTrainingData:
    rng = np.random.default_rng(seed)
    data = MemoryTrainingData()
    for i, split in enumerate(["train"] * n_train + ["val"] * n_val + ["test"] * 2):
        data.add_reference(f"r{i}", *disc_pair(rng), split=split)
    return data


@pytest.fixture
def trained() -> tuple[Learner, MemoryTrainingData, MemoryArtifactStore]:
    data, store = _data(), MemoryArtifactStore()
    learner = Learner(SETTINGS, data, store, device="cpu")
    out = learner.train()
    assert out.version == "v0001" and out.promoted
    return learner, data, store


def test_train_promotes_the_first_version_and_records_everything(
    trained: tuple[Learner, MemoryTrainingData, MemoryArtifactStore],
) -> None:
    learner, _, store = trained
    rec = store.get("v0001")
    assert rec.status == VersionStatus.PRODUCTION and store.production() == "v0001"
    assert [r.role for r in rec.lineage.data] == ["reference"] * 6
    assert rec.lineage.hyperparameters["options"]["steps"] == 30
    assert rec.lineage.extra["precision"] in ("bfloat16", "float32")
    assert rec.report is not None and rec.report["accepted"] and rec.report["against"] is None
    assert rec.metrics["locked_val"]["n_images"] == 2  # half of the 4 val pairs; test never used
    # The finished run's checkpoint and plan are gone; the dataset's fingerprint stays.
    assert [k.split("-")[0] for k in store.checkpoints] == ["fingerprint"]
    plan = rec.manifest.plan
    assert plan["steps"] == 30 and plan["patch_size"] == [32, 32] and plan["reasons"]
    assert plan["fingerprint"]["n_images"] == 6
    name, summary = learner.evaluate(None, "test")
    assert name == "v0001" and summary.n_images == 2


def test_finetune_weights_corrections_replays_reference_and_holds_out(
    trained: tuple[Learner, MemoryTrainingData, MemoryArtifactStore],
) -> None:
    learner, data, store = trained
    rng = np.random.default_rng(7)
    for i in range(4):
        data.add_correction(*disc_pair(rng), held_out=i % 2 == 1)
    out = learner.finetune()
    assert out.parent == "v0001" and out.version == "v0002"
    assert out.n_trained_corrections == 2 and out.n_heldout_corrections == 2
    rec = store.get("v0002")
    roles = [(r.role, r.weight) for r in rec.lineage.data]
    assert roles.count(("correction", 8.0)) == 2 and roles.count(("replay", 1.0)) == 3
    held = set(rec.lineage.held_out_corrections)
    assert held == {"c001", "c003"} and not held & {r.key for r in rec.lineage.data}
    report = rec.report
    assert report is not None and report["against"] == "v0001"
    assert report["production"]["heldout_corrections"]["n_images"] == 2
    assert rec.status == (VersionStatus.PRODUCTION if out.promoted else VersionStatus.REJECTED)


def test_the_replayed_look_alikes_and_their_weights_are_in_the_lineage(
    trained: tuple[Learner, MemoryTrainingData, MemoryArtifactStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fine-tune asks the look-alike rule (tested on its own) for the replay's weights,
    with the policy's share and weight, and the lineage says which pair had which."""
    import medloop.services.replay as replay_module

    asked: list[tuple[int, int, float, float]] = []

    def weights(
        corr: list[np.ndarray], rep: list[np.ndarray], share: float, w: float
    ) -> np.ndarray:
        asked.append((len(corr), len(rep), share, w))
        return np.array([1.5, 0.5] * (len(rep) // 2))

    monkeypatch.setattr(replay_module, "lookalike_weights", weights)
    learner, data, store = trained
    data.add_correction(*disc_pair(np.random.default_rng(5)))
    policy = LearningPolicy(
        steps=2, replay_size=6, correction_weight=8.0, lookalike_share=0.5, lookalike_weight=1.5
    )
    out = learner.finetune(policy)
    assert asked == [(1, 6, 0.5, 1.5)]
    replay = [r.weight for r in store.get(out.version).lineage.data if r.role == "replay"]
    assert replay == [1.5, 0.5] * 3


def test_a_candidate_that_forgets_is_rejected_and_production_stays(
    trained: tuple[Learner, MemoryTrainingData, MemoryArtifactStore],
) -> None:
    learner, data, store = trained
    rng = np.random.default_rng(3)
    for _ in range(4):  # "there is nothing here" on images full of discs
        data.add_correction(*disc_pair(rng, empty=True))
    policy = LearningPolicy(steps=40, lr=1e-2, strategy=Strategy.CORRECTIONS_ONLY)
    out = learner.finetune(policy)
    assert not out.promoted
    assert store.production() == "v0001"
    assert store.get(out.version).status == VersionStatus.REJECTED
    assert any("worse" in r for r in out.decision.reasons)


def test_finetune_needs_production_and_corrections() -> None:
    learner = Learner(SETTINGS, _data(), MemoryArtifactStore(), device="cpu")
    with pytest.raises(NoProductionModel):
        learner.finetune()
    learner.train()
    with pytest.raises(TrainingError, match="no corrections"):
        learner.finetune()


def test_train_needs_validation_pairs() -> None:
    learner = Learner(SETTINGS, _data(n_val=0), MemoryArtifactStore(), device="cpu")
    with pytest.raises(DatasetError, match="val"):
        learner.train()


def test_an_interrupted_training_adds_no_version_and_resumes_exactly() -> None:
    opts = TINY.model_copy(update={"steps": 20, "val_every": 0})
    straight_store = MemoryArtifactStore()
    Learner(SETTINGS, _data(), straight_store, device="cpu").train(opts, run_key="run")

    data, store = _data(), MemoryArtifactStore()
    calls = {"n": 0}

    def stop_at_ten() -> bool:
        calls["n"] += 1
        return calls["n"] > 10

    with pytest.raises(TrainingInterrupted, match="step 10 of 20"):
        Learner(SETTINGS, data, store, device="cpu").train(
            opts, TrainCallbacks(should_stop=stop_at_ten), run_key="run"
        )
    assert store.versions() == [] and {"run", "run-plan"} <= set(store.checkpoints)
    resumed = Learner(SETTINGS, data, store, device="cpu").train(opts, run_key="run")
    assert resumed.steps == 20 and not {"run", "run-plan"} & set(store.checkpoints)
    assert store.read_file("v0001") == straight_store.read_file("v0001")


def test_an_interrupted_finetune_resumes_from_its_checkpoint_and_parent(
    trained: tuple[Learner, MemoryTrainingData, MemoryArtifactStore],
) -> None:
    learner, data, store = trained
    rng = np.random.default_rng(11)
    for _ in range(3):
        data.add_correction(*disc_pair(rng))
    policy = SETTINGS.learning.model_copy(update={"steps": 20})  # a checkpoint every 2 steps
    calls = {"n": 0}

    def killed_at_ten() -> bool:
        calls["n"] += 1
        return calls["n"] > 10

    with pytest.raises(TrainingInterrupted, match="step 10 of 20"):
        learner.finetune(policy, TrainCallbacks(should_stop=killed_at_ten), run_key="job-7")
    assert [v.name for v in store.versions()] == ["v0001"]
    assert {"job-7", "job-7-plan"} <= set(store.checkpoints)
    resumed: list[int] = []
    steps: list[int] = []
    out = learner.finetune(
        policy,
        TrainCallbacks(on_resume=resumed.append, on_step=lambda s, t, loss: steps.append(s)),
        run_key="job-7",
    )
    assert resumed == [10] and steps[0] == 11 and steps[-1] == 20  # the rest of the run only
    assert out.version == "v0002" and out.parent == "v0001"
    assert store.get("v0002").lineage.extra["run"] == "job-7"
    assert not {"job-7", "job-7-plan"} & set(store.checkpoints)


def test_a_run_killed_after_storing_its_candidate_is_judged_not_trained_again(
    trained: tuple[Learner, MemoryTrainingData, MemoryArtifactStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    learner, data, store = trained
    rng = np.random.default_rng(12)
    for _ in range(3):
        data.add_correction(*disc_pair(rng))
    judge = learner._gate.judge

    def killed(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt("kill -9 between storing and judging")

    monkeypatch.setattr(learner._gate, "judge", killed)
    with pytest.raises(KeyboardInterrupt):
        learner.finetune(run_key="job-8")
    assert store.get("v0002").status == VersionStatus.CANDIDATE
    monkeypatch.setattr(learner._gate, "judge", judge)
    steps: list[int] = []
    out = learner.finetune(
        callbacks=TrainCallbacks(on_step=lambda s, t, loss: steps.append(s)), run_key="job-8"
    )
    assert steps == [] and out.version == "v0002"  # judged, not trained again
    assert [v.name for v in store.versions()] == ["v0001", "v0002"]
    assert store.get("v0002").status != VersionStatus.CANDIDATE
    assert learner.version_of_run("job-8") == store.get("v0002")
    with pytest.raises(TrainingError, match="already made v0002"):
        learner.finetune(run_key="job-8")


class _Stop(Exception):
    """Raised by the spy once it has the trainer's spec: the test needs no training."""


def test_a_budgeted_run_trains_for_its_budget_less_what_scoring_will_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from medloop.ml.trainer import TrainSpec
    from medloop.services import learning
    from medloop.services.inference_options import InferenceCost

    seen: list[TrainSpec] = []

    def spy(
        self: Learner, manifest: object, items: object, spec: TrainSpec, *a: object, **k: object
    ) -> None:
        seen.append(spec)
        raise _Stop

    budget = TINY.model_copy(update={"steps": None, "budget_s": 60.0})
    for scoring in (0.0, 25.0):
        monkeypatch.setattr(
            learning,
            "inference_cost",
            lambda *a, s=scoring, **k: InferenceCost(s, False, "n/a", select_pass=s / 5),
        )
        monkeypatch.setattr(Learner, "_fit", spy)
        t0 = time.perf_counter()
        with pytest.raises(_Stop):
            Learner(SETTINGS, _data(), MemoryArtifactStore(), device="cpu").train(budget)
        spent = time.perf_counter() - t0
        ceiling = 60.0 * (1 - learning.RESERVE) - scoring
        assert seen[-1].max_seconds is not None
        assert ceiling - spent <= seen[-1].max_seconds <= ceiling
        assert seen[-1].val_seconds == (scoring / 5 or None)  # one validation's estimate
    assert 20.0 < seen[0].max_seconds - seen[1].max_seconds < 30.0  # type: ignore[operator]
