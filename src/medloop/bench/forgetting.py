"""Which remedy keeps a fine-tune from forgetting? Rounds of corrections, each remedy.

From one base model (the loop benchmark's), each remedy fine-tunes on the same K
corrections of the target group with weighted replay (and, with ``--rounds``, on K
more in each further round, the same for every remedy, as the loop does), and is
scored on the target and source groups' ``test`` splits. The table gives, per remedy
and round, the target gain and the source drop against the base, and the seconds the
fine-tune took — what the default learning policy is chosen from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medloop.bench.loop import LoopConfig, LoopSetup, correct_and_finetune, prepare_loop

__all__ = ["REMEDIES", "run_forgetting"]

_OFF = {
    "distillation": 0.0,
    "l2sp": 0.0,
    "ema": 0.0,
    "encoder_lr_scale": 1.0,
    "lookalike_share": 0.0,
}
REMEDIES: dict[str, dict[str, Any]] = {
    "none": _OFF,
    "none at lr 3e-4": {**_OFF, "lr": 3e-4},
    "distillation": {**_OFF, "distillation": 10.0},
    "distillation at lr 3e-4": {**_OFF, "distillation": 10.0, "lr": 3e-4},
    "distillation 3": {**_OFF, "distillation": 3.0},
    "distillation 1": {**_OFF, "distillation": 1.0},
    "l2-sp": {**_OFF, "l2sp": 0.01},
    "ema": {**_OFF, "ema": 0.99},
    "encoder lr x0.1": {**_OFF, "encoder_lr_scale": 0.1},
    "more replay (w 8)": {**_OFF, "correction_weight": 8.0},
    "distillation + ema": {**_OFF, "distillation": 10.0, "ema": 0.99},
    "distillation + w 4": {**_OFF, "distillation": 10.0, "correction_weight": 4.0},
    "distillation + w 8": {**_OFF, "distillation": 10.0, "correction_weight": 8.0},
    "distillation + w 16": {**_OFF, "distillation": 10.0, "correction_weight": 16.0},
    "distillation + w 32": {**_OFF, "distillation": 10.0, "correction_weight": 32.0},
    "distillation + w 128": {**_OFF, "distillation": 10.0, "correction_weight": 128.0},
    "distillation + 600 steps": {**_OFF, "distillation": 10.0, "steps": 600},
    "distillation + batch 16": {**_OFF, "distillation": 10.0, "batch_size": 16},
    "distillation + look-alikes x4": {
        **_OFF,
        "distillation": 10.0,
        "lookalike_share": 0.1,
        "lookalike_weight": 4.0,
    },
    "distillation + look-alikes x8": {
        **_OFF,
        "distillation": 10.0,
        "lookalike_share": 0.1,
        "lookalike_weight": 8.0,
    },
    "distillation + look-alikes x4 + w 128": {
        **_OFF,
        "distillation": 10.0,
        "lookalike_share": 0.1,
        "lookalike_weight": 4.0,
        "correction_weight": 128.0,
    },
    "distillation + look-alikes 5% x16": {
        **_OFF,
        "distillation": 10.0,
        "lookalike_share": 0.05,
        "lookalike_weight": 16.0,
    },
}
"""Remedy name (no commas: ``--remedies`` takes a comma-separated list) -> the learning
policy's settings it changes from the project's defaults, the retention terms it does not
name off (see :mod:`medloop.ml.retention`; look-alike replay, :mod:`medloop.services.lookalikes`,
is off too unless named). A weight is named by its value, so a name
runs the same fine-tune whatever the default (results written before the default went
from 16 to 64 name them by their factor over 16: ``w/2`` is ``w 8``)."""


def _round_row(setup: LoopSetup, name: str, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its gain and drop against the base, printed as it comes."""
    base = setup.header["base"]
    row["target_gain"] = row["candidate_target_dice"] - base["target_dice"]
    row["source_drop"] = base["source_dice"] - row["candidate_source_dice"]
    setup.console.print(
        f"{name} round {row['round']}: target {row['candidate_target_dice']:.4f} "
        f"({row['target_gain']:+.4f}), source {row['candidate_source_dice']:.4f} "
        f"(drop {row['source_drop']:+.4f}), {row['train_seconds']:.1f} s"
    )
    return row


def run_forgetting(
    cfg: LoopConfig, json_path: Path, remedies: list[str] | None = None
) -> dict[str, Any]:
    """Fine-tune the base per remedy, ``cfg.rounds`` rounds of corrections each; write JSON.

    Each remedy's row is its last round's (the first round's alone by default), with
    every round's rows under ``rounds``. A round starts from the remedy's production,
    which its gate may have kept at the base; gain and drop are against the base.
    """
    names = remedies or list(REMEDIES)
    unknown = [n for n in names if n not in REMEDIES]
    if unknown:
        from medloop.errors import ConfigError

        raise ConfigError(f"unknown remedies {unknown}; choose from {', '.join(REMEDIES)}")
    setup = prepare_loop(cfg)
    base = setup.header["base"]
    rows: dict[str, Any] = {}
    for name in names:
        policy = setup.policy.model_copy(update=REMEDIES[name])
        workspace = setup.workspace(f"remedy-{len(rows)}")
        done = []
        for r in range(cfg.rounds):
            picked = setup.pool[r * cfg.per_round : (r + 1) * cfg.per_round]
            row = correct_and_finetune(setup, workspace, policy, picked, r + 1)
            done.append(_round_row(setup, name, row))
        rows[name] = {**done[-1], "rounds": done, "policy": policy.to_json()}
    results = {**setup.header, "remedies": rows}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2))
    table = Table(
        "remedy",
        "round",
        "target Dice",
        "target gain",
        "source Dice",
        "source drop",
        "promoted",
        "seconds",
        title=f"{cfg.per_round} corrections a round; base target {base['target_dice']:.3f}, "
        f"source {base['source_dice']:.3f} — {setup.header['machine']}",
    )
    for name, remedy in rows.items():
        for r in remedy["rounds"]:
            table.add_row(
                name,
                str(r["round"]),
                f"{r['candidate_target_dice']:.3f}",
                f"{r['target_gain']:+.3f}",
                f"{r['candidate_source_dice']:.3f}",
                f"{r['source_drop']:+.3f}",
                "yes" if r["promoted"] else "no",
                f"{r['train_seconds']:.1f}",
            )
    Console().print(table)
    return results
