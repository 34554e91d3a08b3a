"""The SDK's image, analysis, correction and click endpoints."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medloop.client._base import (
    ClientBase,
    FileInput,
    _limits,
    _pair,
    _seg,
)
from medloop.client.errors import (
    InvalidArgument,
)
from medloop.client.models import (
    AnalysisOut,
    CorrectionOut,
    ImageOut,
    Page,
    ReviewItemOut,
)
from medloop.client.refine_models import Click, RefineOut
from medloop.client.volume_models import SliceOut

__all__ = ["AnalysesApi"]


class AnalysesApi(ClientBase):
    """The SDK's image, analysis, correction and click endpoints."""

    # -- images --------------------------------------------------------------------------

    def upload_image(self, project: str, file: FileInput, filename: str | None = None) -> ImageOut:
        """``POST .../images``: store an image (the same bytes twice give the same image).

        Example::

            img = c.upload_image("knee", Path("scan.dcm"))
            print(img.id, img.width, img.height, img.spacing_mm)
        """
        with self._files({"file": (file, filename, "image")}) as files:
            return self._json("POST", f"{self._p(project)}/images", ImageOut, files=files)

    def get_image(self, project: str, image_id: str) -> ImageOut:
        """``GET .../images/{i}``: the image record."""
        return self._json("GET", f"{self._p(project)}/images/{_seg(image_id, 'image')}", ImageOut)

    def download_image(self, project: str, image_id: str) -> bytes:
        """``GET .../images/{i}/file``: the original bytes as uploaded."""
        return self._send(
            "GET", f"{self._p(project)}/images/{_seg(image_id, 'image')}/file", accept="*/*"
        ).content

    # -- analyses ------------------------------------------------------------------------

    def analyze(
        self,
        project: str,
        image_id: str | None = None,
        file: FileInput | None = None,
        version: str | None = None,
        filename: str | None = None,
    ) -> AnalysisOut:
        """``POST .../analyses``: segment a stored image (``image_id``) or upload and segment
        one (``file``; a folder is a DICOM series, see :meth:`analyze_series`) — exactly one
        of them. ``version`` defaults to production (with
        ``file`` and a ``version``, the client uploads first, then analyses by image id).

        Example::

            a = c.analyze("knee", file="scan.png")
            for m in a.measurements:
                print(m.name, m.area_px, m.area_mm2, m.components)
        """
        if (image_id is None) == (file is None):
            raise InvalidArgument("analyze needs exactly one of image_id= or file=")
        path = f"{self._p(project)}/analyses"
        if image_id is not None:
            body: dict[str, Any] = {"image_id": image_id}
            if version is not None:
                body["version"] = version
            return self._json("POST", path, AnalysisOut, json=body)
        assert file is not None
        if isinstance(file, str | os.PathLike) and Path(file).is_dir():
            if version is not None:
                raise InvalidArgument("a DICOM series is analysed with production (no version=)")
            return self.analyze_series(project, file)
        if version is not None:
            # The one-call upload takes no version: upload, then analyse by id with it.
            uploaded = self.upload_image(project, file, filename)
            return self.analyze(project, image_id=uploaded.id, version=version)
        with self._files({"file": (file, filename, "image")}) as files:
            return self._json("POST", path, AnalysisOut, files=files)

    def analyze_series(
        self,
        project: str,
        files: str | os.PathLike[str] | Sequence[FileInput],
    ) -> AnalysisOut:
        """``POST .../analyses`` with the instances of one DICOM series (a 3D project): a
        folder (every file in it and below, hidden ones left out) or a list of files,
        sent in one request; the server assembles and checks the volume and analyses it
        with the production version (another version: ``analyze(image_id=a.image_id,
        version=...)`` afterwards).

        Example::

            a = c.analyze_series("brain", "study/series-3/")
            open("labels.nii.gz", "wb").write(c.analysis_mask("brain", a.id))
        """
        if isinstance(files, str | os.PathLike):
            folder = Path(files)
            if not folder.is_dir():
                raise InvalidArgument(f"{folder} is not a folder")
            sources: list[FileInput] = [
                p
                for p in sorted(folder.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(folder).parts)
            ]
        else:
            sources = list(files)
        if not sources:
            raise InvalidArgument("a series needs its instances: no files given")
        with ExitStack() as stack:
            parts = [
                ("file", self._file_part(src, None, f"instance{k}", stack))
                for k, src in enumerate(sources)
            ]
            return self._json("POST", f"{self._p(project)}/analyses", AnalysisOut, files=parts)

    def get_analysis(self, project: str, analysis_id: str) -> AnalysisOut:
        """``GET .../analyses/{a}``."""
        return self._json("GET", self._a(project, analysis_id), AnalysisOut)

    def list_analyses(self, project: str, limit: int = 50, offset: int = 0) -> Page[AnalysisOut]:
        """``GET .../analyses``: newest first, one page."""
        return self._json(
            "GET",
            f"{self._p(project)}/analyses",
            Page[AnalysisOut],
            params=_limits(limit, offset),
        )

    def analysis_mask(self, project: str, analysis_id: str) -> bytes:
        """``GET .../analyses/{a}/mask``: the predicted label map (value = label): PNG bytes,
        or for a volume (``AnalysisOut.volume``) a gzipped NIfTI on the uploaded grid."""
        return self._send("GET", f"{self._a(project, analysis_id)}/mask", accept="*/*").content

    def analysis_slice(
        self,
        project: str,
        analysis_id: str,
        plane: str = "axial",
        index: int = 0,
        kind: str = "overlay",
        window: str | None = None,
    ) -> SliceOut:
        """``GET .../analyses/{a}/slice``: one slice of a volume analysis as a PNG.

        ``plane``: axial, coronal or sagittal; ``kind``: image (windowed), overlay or mask
        (label map, value = label); ``window``: ``auto``, a CT preset (``soft-tissue``,
        ``lung``, ``bone``, ``brain``) or ``"center,width"``.

        Example::

            first = c.analysis_slice("brain", a.id, "coronal", 0)
            mid = c.analysis_slice("brain", a.id, "coronal", first.count // 2)
            open("coronal.png", "wb").write(mid.png)
        """
        params: dict[str, Any] = {"plane": plane, "index": index, "kind": kind}
        if window is not None:
            params["window"] = window
        resp = self._send(
            "GET", f"{self._a(project, analysis_id)}/slice", accept="*/*", params=params
        )
        head = resp.headers
        spacing = head.get("x-pixel-spacing")
        center, width = head.get("x-window-center"), head.get("x-window-width")
        return SliceOut(
            png=resp.content,
            count=int(head.get("x-slice-count", "0")),
            spacing_mm=_pair(spacing),
            center=float(center) if center else None,
            width=float(width) if width else None,
        )

    def analysis_overlay(self, project: str, analysis_id: str) -> bytes:
        """``GET .../analyses/{a}/overlay``: the image with the coloured mask, PNG bytes."""
        return self._send("GET", f"{self._a(project, analysis_id)}/overlay", accept="*/*").content

    def _a(self, project: str, analysis_id: str) -> str:
        return f"{self._p(project)}/analyses/{_seg(analysis_id, 'analysis')}"

    # -- corrections ---------------------------------------------------------------------

    def correct(
        self,
        project: str,
        analysis_id: str,
        mask: FileInput,
        filename: str | None = None,
        *,
        clicks: int | None = None,
        brush_strokes: int | None = None,
        active_seconds: float | None = None,
    ) -> CorrectionOut:
        """``POST .../analyses/{a}/corrections``: the clinician's corrected label map (a PNG;
        for a volume analysis a NIfTI or NRRD label volume on the analysed grid), with what
        it cost (``clicks``, ``brush_strokes``, ``active_seconds``) when known:
        the server stores that effort record beside its own Dice against the prediction.

        Example::

            fix = c.correct("knee", a.id, "corrected.png", clicks=3, active_seconds=40)
            print(f"agreement Dice {fix.dice_vs_prediction:.3f}", fix.effort)
            if fix.finetune_job_id:
                c.wait_for_job("knee", fix.finetune_job_id)
        """
        effort = {
            "clicks": clicks,
            "brush_strokes": brush_strokes,
            "active_seconds": active_seconds,
        }
        data = {k: str(v) for k, v in effort.items() if v is not None}
        with self._files({"file": (mask, filename, "mask")}) as files:
            return self._json(
                "POST",
                f"{self._a(project, analysis_id)}/corrections",
                CorrectionOut,
                files=files,
                data=data or None,
            )

    # -- clicks --------------------------------------------------------------------------

    def refine(
        self,
        project: str,
        analysis_id: str,
        clicks: Sequence[Click | Mapping[str, Any]] = (),
        box: Sequence[float] | None = None,
        reset: bool = False,
        box_label: int = 1,
    ) -> RefineOut:
        """``POST .../analyses/{a}/refine``: add clicks (and a box ``[x0, y0, x1, y1]``, or
        ``[x0, y0, z0, x1, y1, z1]`` on a volume, whose clicks need ``z``) to your
        interaction with the analysis and get the refined label map (a volume: only the
        changed block, :attr:`RefineOut.changed`). Clicks accumulate
        on the server for a few minutes; ``reset=True`` starts over. Nothing is stored:
        submit the result with :meth:`correct`. The analysis's model version must have
        been trained for clicks (``training.interactive``; else :class:`Conflict`).

        Example::

            r = c.refine("knee", a.id, [Click(x=120, y=80, label=1)])
            r = c.refine("knee", a.id, [Click(x=90, y=60, label=1, positive=False)])
            c.correct("knee", a.id, r.mask, clicks=r.clicks)
        """
        body = self._guidance(clicks, box, box_label)
        if reset:
            body["reset"] = True
        return self._json("POST", f"{self._a(project, analysis_id)}/refine", RefineOut, json=body)

    def refined_labels(self, project: str, analysis_id: str) -> bytes:
        """``GET .../analyses/{a}/refine/labels``: your refined label map as it stands, a PNG
        (2D) or a gzipped NIfTI on the volume's own grid (:class:`NotFound` when you have
        not refined the analysis in the last few minutes)."""
        url = f"{self._a(project, analysis_id)}/refine/labels"
        return self._send("GET", url, accept="*/*").content

    def segment(
        self,
        project: str,
        image_id: str,
        clicks: Sequence[Click | Mapping[str, Any]] | None = None,
        box: Sequence[float] | None = None,
        frame: int = 0,
        box_label: int = 1,
    ) -> RefineOut:
        """``POST .../images/{i}/segment``: a label map of a stored image (``frame`` of a
        multi-frame one) from clicks or a box alone, with the production version. On a
        volume (clicks with ``z``, a box of six values) only the block inferred around the
        guidance comes back, in :attr:`RefineOut.changed` (the rest is background)."""
        if not clicks and box is None:
            raise InvalidArgument("segment needs clicks= or box=")
        body = self._guidance(clicks or (), box, box_label)
        if frame:
            body["frame"] = frame
        return self._json(
            "POST",
            f"{self._p(project)}/images/{_seg(image_id, 'image')}/segment",
            RefineOut,
            json=body,
        )

    @staticmethod
    def _guidance(
        clicks: Sequence[Click | Mapping[str, Any]], box: Sequence[float] | None, box_label: int
    ) -> dict[str, Any]:
        try:
            parsed = [c if isinstance(c, Click) else Click.model_validate(c) for c in clicks]
        except ValidationError as err:
            raise InvalidArgument(
                f"a click needs x, y and label: {err.errors()[0]['msg']}"
            ) from err
        body: dict[str, Any] = {"clicks": [c.model_dump(exclude_none=True) for c in parsed]}
        if box is not None:
            body["box"] = [float(v) for v in box]
            body["box_label"] = box_label
        return body

    def list_corrections(
        self, project: str, limit: int | None = None, offset: int | None = None
    ) -> Page[CorrectionOut]:
        """``GET .../corrections``: the project's corrections, as stored."""
        return self._json(
            "GET",
            f"{self._p(project)}/corrections",
            Page[CorrectionOut],
            params=_limits(limit, offset),
        )

    def review_queue(self, project: str, limit: int = 20, offset: int = 0) -> Page[ReviewItemOut]:
        """``GET .../review-queue``: uncorrected analyses, most uncertain first, then oldest."""
        return self._json(
            "GET",
            f"{self._p(project)}/review-queue",
            Page[ReviewItemOut],
            params=_limits(limit, offset),
        )
