"""A version's own scores on the locked set, stored with it and recalled by the gate.

A candidate is scored image by image on the locked set before it is stored; those
scores become one of its files (:data:`LOCKED_SCORES_FILE`). When a later candidate is
judged against this version, the gate needs this version's scores on the same images
again: a version is immutable, so for each locked image whose key and content (image
and mask sha256, frame) match a recorded one, scored on the same kind of device, the
recorded scores are what scoring it again would give, and only the rest is scored.
The demo's fine-tune gate scored 40 locked images twice, 3-4 s of network time on a
2-core CPU; it now scores them once.

The file holds, per image, its key, content hashes, group and Dice and IoU per class
1..K, plus the device type that scored them (``cpu`` or ``cuda``: CUDA inference runs in
bfloat16, so its scores are not a CPU's).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from medloop.domain.ports import PairSample
from medloop.services.evaluation import SampleScore

__all__ = ["LOCKED_SCORES_FILE", "encode", "recall"]

LOCKED_SCORES_FILE = "locked_scores.json"
FORMAT = 1


def _identity(sample: PairSample) -> tuple[str, str, str, int]:
    return (sample.key, sample.image_sha256, sample.mask_sha256, sample.frame)


def encode(samples: Sequence[PairSample], scores: Sequence[SampleScore], device: str) -> bytes:
    """The file's bytes for ``scores`` of ``samples`` (same order), scored on ``device``
    (a device type: ``cpu``, ``cuda``)."""
    if len(samples) != len(scores):
        raise ValueError(f"{len(samples)} samples but {len(scores)} scores")
    images = [
        {
            "key": s.key,
            "image_sha256": s.image_sha256,
            "mask_sha256": s.mask_sha256,
            "frame": s.frame,
            "group": s.group,
            "dice": list(sc.dice),
            "iou": list(sc.iou),
        }
        for s, sc in zip(samples, scores, strict=True)
    ]
    doc = {"format": FORMAT, "device": device, "images": images}
    return json.dumps(doc, sort_keys=True).encode()


def recall(
    data: bytes, samples: Sequence[PairSample], device: str, k: int
) -> list[SampleScore | None]:
    """The recorded scores of ``samples`` over ``k`` foreground classes (``None`` for
    those not recorded, or for all when the file was scored on another kind of device,
    for another number of classes, or cannot be read). HD95 is NaN: the gate does not
    compute it."""
    unknown: list[SampleScore | None] = [None] * len(samples)
    try:
        doc: dict[str, Any] = json.loads(data)
        if doc.get("format") != FORMAT or doc.get("device") != device:
            return unknown
        known = {
            (d["key"], d["image_sha256"], d["mask_sha256"], int(d["frame"])): (
                tuple(float(v) for v in d["dice"]),
                tuple(float(v) for v in d["iou"]),
            )
            for d in doc["images"]
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return unknown  # not a file this release wrote: score everything again
    if any(len(dice) != k or len(iou) != k for dice, iou in known.values()):
        return unknown
    out: list[SampleScore | None] = []
    for s in samples:
        entry = known.get(_identity(s))
        if entry is None:
            out.append(None)
        else:
            out.append(SampleScore(entry[0], entry[1], (math.nan,) * k, s.group))
    return out
