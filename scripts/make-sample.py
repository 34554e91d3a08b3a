#!/usr/bin/env python3
"""Rebuild the bundled demo sample (src/medloop/sample/nuclei) from ../shared/data/dsb2018_nuclei.

The Data Science Bowl 2018 nuclei (BBBC038) are CC0. The sample takes, in a fixed hash
order, fluorescence pairs from `train` (the reference training set) and from `val`
(halved by the engine into a selection and a locked set: the gate needs enough locked
images to show that a candidate is no worse), both 256 x 256 and 360 x 360 in the same
proportion, and brightfield/H&E pairs (320 x 256) from `train` (the simulated
clinician's corrections) and from `val` (images the first model never saw, split `test`
in the sample). No `test` pair is copied.

    python3 scripts/make-sample.py [--data ../shared/data/dsb2018_nuclei]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import struct
from pathlib import Path

COUNTS = {
    ("fluorescence", "train"): ("train", {(256, 256): 24, (360, 360): 8}),
    ("fluorescence", "val"): ("val", {(256, 256): 59, (360, 360): 21}),
    ("brightfield_or_he", "train"): ("train", {(320, 256): 8}),
    ("brightfield_or_he", "val"): ("test", {(320, 256): 4}),
}
"""(group, split) -> (the sample's split, pairs taken per image size). Training and
validation pairs mix the two fluorescence sizes alike, so the gate's locked set is
drawn from what version 1 and the fine-tune's replay see."""
OUT = Path(__file__).resolve().parents[1] / "src" / "medloop" / "sample" / "nuclei"


def _png_size(path: Path) -> tuple[int, int]:
    with open(path, "rb") as fh:
        head = fh.read(24)
    return struct.unpack(">II", head[16:24])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/dsb2018_nuclei"))
    args = parser.parse_args()
    with open(args.data / "manifest.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "images").mkdir(parents=True)
    (OUT / "masks").mkdir(parents=True)
    out_rows = []
    for (group, split), (new_split, sizes) in COUNTS.items():
        chosen = [
            r
            for size, count in sizes.items()
            for r in sorted(
                (
                    r
                    for r in rows
                    if r["group"] == group
                    and r["split"] == split
                    and _png_size(args.data / r["image"]) == size
                ),
                key=lambda r: hashlib.sha256(r["image"].encode()).hexdigest(),
            )[:count]
        ]
        for r in chosen:
            name = Path(r["image"]).name[:12] + ".png"
            shutil.copyfile(args.data / r["image"], OUT / "images" / name)
            shutil.copyfile(args.data / r["mask"], OUT / "masks" / name)
            out_rows.append(
                {
                    "image": f"images/{name}",
                    "mask": f"masks/{name}",
                    "group": group,
                    "split": new_split,
                }
            )
    with open(OUT / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "mask", "group", "split"])
        writer.writeheader()
        writer.writerows(out_rows)
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(out_rows)} pairs, {size / 1e6:.2f} MB, to {OUT}")


if __name__ == "__main__":
    main()
