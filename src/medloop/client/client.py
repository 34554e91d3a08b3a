"""A synchronous client for the medloop HTTP API (``/api/v1``), built on httpx.

Example::

    from medloop.client import MedloopClient

    with MedloopClient("https://medloop.example.org", token="...") as c:
        a = c.analyze("knee", file="scan.png")           # upload + analyse in one call
        print(a.id, a.model_version, a.uncertainty)
        open("mask.png", "wb").write(c.analysis_mask("knee", a.id))
        fix = c.correct("knee", a.id, "fixed_mask.png")  # a PNG label map
        print(fix.dice_vs_prediction, fix.corrections_until_finetune)

Security defaults: TLS certificates are always verified (pass a CA bundle path as ``verify``
for a private CA; ``verify=False`` works only with a :class:`RuntimeWarning`), redirects are
never followed (the token is never sent to another host), and ids are percent-encoded into
paths so that an id cannot walk out of its route.
"""

from __future__ import annotations

import mimetypes
import os
import ssl
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from medloop import __version__
from medloop.client.admin_models import (
    CurveOut,
    ErasureOut,
    ErasurePreviewOut,
    ErasureRequestOut,
    ImportOut,
    NewTokenOut,
    NewUserOut,
    ReferenceItemOut,
    ReferenceSummaryOut,
    TokenOut,
    UserOut,
)
from medloop.client.errors import (
    ApiError,
    InvalidArgument,
    JobTimeout,
    ServerError,
    TransportError,
    UnexpectedResponse,
    _describe,
    error_for_status,
)
from medloop.client.models import (
    AcceptanceRule,
    AnalysisOut,
    ApiModel,
    AuditEventOut,
    CorrectionOut,
    Health,
    ImageOut,
    JobOut,
    Label,
    Learning,
    Me,
    ModelVersionOut,
    Page,
    ProjectIn,
    ProjectOut,
    ReferenceOut,
    ReviewItemOut,
    Training,
)
from medloop.client.refine_models import Click, RefineOut
from medloop.client.volume_models import SliceOut

__all__ = ["DEFAULT", "FileInput", "MedloopClient"]

DEFAULT: Literal["default"] = "default"
"""A token's expiry left to the server: a person's default lifetime, a device's none."""

FileInput: TypeAlias = str | os.PathLike[str] | bytes | IO[bytes]
"""A file to upload: a path (``str`` or ``Path``, streamed from disk), bytes, or an open binary file."""

M = TypeVar("M", bound=BaseModel)

API = "/api/v1"
_MAGIC: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (0, b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (0, b"II*\x00", "image/tiff", ".tif"),
    (0, b"MM\x00*", "image/tiff", ".tif"),
    (0, b"GIF87a", "image/gif", ".gif"),
    (0, b"GIF89a", "image/gif", ".gif"),
    (0, b"BM", "image/bmp", ".bmp"),
    (128, b"DICM", "application/dicom", ".dcm"),
)
_EXTRA_TYPES = {".dcm": "application/dicom", ".dicom": "application/dicom"}
_CHUNK = 1 << 16


def _pair(text: str | None) -> tuple[float, float] | None:
    """``(a, b)`` from a header ``"a,b"``, or None."""
    if not text:
        return None
    a, b = (float(v) for v in text.split(","))
    return a, b


def _sniff(head: bytes) -> tuple[str, str] | None:
    """``(content type, extension)`` from the first bytes of a file, or None."""
    for offset, magic, ctype, ext in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return ctype, ext
    return None


def _seg(value: object, what: str) -> str:
    """One path segment, percent-encoded; refuses empty, ``.`` and ``..``."""
    text = str(value)
    if text in ("", ".", "..") or "\x00" in text:
        raise InvalidArgument(f"{what} {text!r} is not a valid id")
    return quote(text, safe="")


def _set(value: Mapping[str, Any] | ApiModel | None) -> dict[str, Any] | None:
    """Only the fields the caller set (``None`` stays ``None``: not sent)."""
    if value is None:
        return None
    if isinstance(value, ApiModel):
        return value.model_dump(exclude_none=True)
    return dict(value)


def _limits(limit: int | None, offset: int | None) -> dict[str, int]:
    params: dict[str, int] = {}
    if limit is not None:
        if limit < 1:
            raise InvalidArgument(f"limit must be at least 1, got {limit}")
        params["limit"] = limit
    if offset is not None:
        if offset < 0:
            raise InvalidArgument(f"offset must be at least 0, got {offset}")
        params["offset"] = offset
    return params


class MedloopClient:
    """Client for one medloop server; one method per API endpoint.

    ``base_url`` is the server root (``https://host:8443``, or with a path prefix when behind
    a proxy); the API lives under ``/api/v1`` below it. ``token`` is the API token from
    ``medloop users add`` (sent as ``Authorization: Bearer``). ``timeout`` is per request in
    seconds. ``verify`` is ``True`` (system/certifi CAs), a CA bundle path, or an
    :class:`ssl.SSLContext`.

    ``http_client`` lets you supply your own :class:`httpx.Client` — for instance Starlette's
    ``TestClient(app)`` for in-process tests; the client then uses its transport and settings
    (``timeout`` and ``verify`` are ignored), sets the auth header per request, and does not
    close it. With an ``http_client`` that has its own ``base_url``, pass ``base_url=""``.

    Example::

        from fastapi.testclient import TestClient

        with TestClient(app) as tc:
            c = MedloopClient("http://testserver", token, http_client=tc)
            assert c.health().status == "ok"
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        http_client: httpx.Client | None = None,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        base = base_url.strip().rstrip("/")
        if base and not base.lower().startswith(("http://", "https://")):
            raise InvalidArgument(
                f"server URL must start with http:// or https://, got {base_url!r}"
            )
        if not base and http_client is None:
            raise InvalidArgument("a server URL is needed (e.g. https://medloop.example.org)")
        self.base_url = base
        self._token = token.strip() if token else None
        if self._token is not None and any(c in self._token for c in "\r\n\x00"):
            raise InvalidArgument("the token holds a line break or NUL")
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.Client(
                timeout=httpx.Timeout(timeout),
                verify=self._ssl_verify(verify),
                follow_redirects=False,
                headers={"User-Agent": f"medloop-client/{__version__}"},
            )
        self._http = http_client

    @staticmethod
    def _ssl_verify(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
        if isinstance(verify, ssl.SSLContext):
            return verify
        if verify is False:
            warnings.warn(
                "TLS certificate verification is OFF: anyone on the network path can read the "
                "token and the images; pass a CA bundle path as verify= instead",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        if verify is True:
            return True
        if not Path(verify).is_file():
            raise InvalidArgument(f"CA bundle {verify} does not exist")
        return ssl.create_default_context(cafile=verify)

    def __repr__(self) -> str:  # never shows the token
        return f"MedloopClient({self.base_url!r})"

    def __enter__(self) -> MedloopClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (not an ``http_client`` you passed in)."""
        if self._owns_http:
            self._http.close()

    # -- plumbing ------------------------------------------------------------------------

    def _headers(self, auth: bool = True, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept}
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _send(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        accept: str = "application/json",
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        try:
            resp = self._http.request(
                method,
                self._url(path),
                params=params,
                json=json,
                data=data,
                files=files,
                headers=self._headers(auth, accept),
            )
        except (httpx.TransportError, httpx.InvalidURL) as err:
            raise TransportError(f"{method} {self._url(path)} failed: {err}") from err
        if resp.status_code >= 400:
            raise self._api_error(resp)
        return resp

    @staticmethod
    def _api_error(resp: httpx.Response) -> ApiError:
        """The exception for an error answer, from its ``{"error": {...}}`` body or its text."""
        status = resp.status_code
        code = f"http_{status}"
        message = resp.reason_phrase or f"HTTP {status}"
        try:
            body: Any = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
        elif isinstance(body, dict) and "detail" in body:
            message = _describe(body["detail"]) or message
        else:
            text = resp.text.strip()
            if text:
                message = text if len(text) <= 500 else text[:500] + "…"
        return error_for_status(status, code, message, resp.headers.get("retry-after"))

    @staticmethod
    def _parse(resp: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as err:
            raise UnexpectedResponse(
                f"{resp.request.method} {resp.request.url.path}: the answer is not a "
                f"{model.__name__}: {err.errors(include_url=False)[:3]}"
            ) from err

    def _json(self, method: str, path: str, model: type[M], **kw: Any) -> M:
        return self._parse(self._send(method, path, **kw), model)

    @staticmethod
    def _p(project: str) -> str:
        return f"{API}/projects/{_seg(project, 'project')}"

    @contextmanager
    def _files(
        self, fields: Mapping[str, tuple[FileInput, str | None, str]]
    ) -> Iterator[dict[str, tuple[str, bytes | IO[bytes], str]]]:
        """Multipart file fields; paths are opened here and streamed by httpx, then closed.

        ``fields`` maps a form field to ``(source, filename or None, fallback name)``.
        """
        with ExitStack() as stack:
            out: dict[str, tuple[str, bytes | IO[bytes], str]] = {}
            for field, (source, filename, fallback) in fields.items():
                out[field] = self._file_part(source, filename, fallback, stack)
            yield out

    @staticmethod
    def _file_part(
        source: FileInput, filename: str | None, fallback: str, stack: ExitStack
    ) -> tuple[str, bytes | IO[bytes], str]:
        body: bytes | IO[bytes]
        if isinstance(source, bytes | bytearray | memoryview):
            body = bytes(source)
            head = body[:132]
            name = filename
        elif isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.is_file():
                raise InvalidArgument(f"file {path} does not exist")
            fh = stack.enter_context(path.open("rb"))
            head = fh.read(132)
            fh.seek(0)
            body = fh
            name = filename or path.name
        else:
            body = source
            head = b""
            if source.seekable():
                pos = source.tell()
                head = source.read(132)
                source.seek(pos)
            raw_name = getattr(source, "name", None)
            name = filename or (Path(raw_name).name if isinstance(raw_name, str) else None)
        sniffed = _sniff(head)
        if not name:
            name = fallback + (sniffed[1] if sniffed else "")
        if sniffed:
            ctype = sniffed[0]
        else:
            ext = Path(name).suffix.lower()
            ctype = (
                _EXTRA_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"
            )
        return name, body, ctype

    # -- service -------------------------------------------------------------------------

    def health(self) -> Health:
        """``GET /healthz`` (no token needed).

        >>> client.health().status  # doctest: +SKIP
        'ok'
        """
        return self._json("GET", "/healthz", Health, auth=False)

    def me(self) -> Me:
        """``GET /api/v1/me``: the identity (name, role, project) behind the token."""
        return self._json("GET", f"{API}/me", Me)

    # -- projects ------------------------------------------------------------------------

    def list_projects(
        self, limit: int | None = None, offset: int | None = None, archived: bool = False
    ) -> Page[ProjectOut]:
        """``GET /api/v1/projects``: the projects this token can see (``archived``: those
        archived instead)."""
        params: dict[str, Any] = dict(_limits(limit, offset))
        if archived:
            params["archived"] = "true"
        return self._json("GET", f"{API}/projects", Page[ProjectOut], params=params)

    def create_project(
        self,
        name: str,
        labels: Sequence[Mapping[str, Any] | Label],
        image_kind: str | None = None,
        learning: Mapping[str, Any] | Learning | None = None,
        *,
        acceptance: Mapping[str, Any] | AcceptanceRule | None = None,
        training: Mapping[str, Any] | Training | None = None,
        finetune_every: int | None = None,
        max_frames: int | None = None,
        spatial_dims: int | None = None,
    ) -> ProjectOut:
        """``POST /api/v1/projects`` (admins): a new segmentation task.

        Only what is given is sent; the server fills in its defaults for the rest.
        ``learning``, ``acceptance`` and ``training`` take the fields of
        :class:`~medloop.client.models.Learning`, :class:`~medloop.client.models.AcceptanceRule`
        and :class:`~medloop.client.models.Training`.

        Example::

            c.create_project(
                "knee",
                [{"value": 1, "name": "cartilage", "color": "#ff0000"}],
                image_kind="mri",
                learning={"correction_weight": 16},
                finetune_every=5,
            )
        """
        project = ProjectIn.model_validate(
            {
                "name": name,
                "labels": [lab.model_dump() if isinstance(lab, Label) else lab for lab in labels],
                "image_kind": image_kind,
                "learning": _set(learning),
                "acceptance": _set(acceptance),
                "training": _set(training),
                "finetune_every": finetune_every,
                "max_frames": max_frames,
                "spatial_dims": spatial_dims,
            }
        )
        return self._json("POST", f"{API}/projects", ProjectOut, json=project.body())

    def update_project(self, project: str, changes: Mapping[str, Any]) -> ProjectOut:
        """``PATCH /api/v1/projects/{p}`` (admins): change settings as a JSON merge patch.

        Only what ``changes`` names changes; inside ``learning``, ``acceptance`` and
        ``training`` only the keys given, and ``None`` puts a field back to the server's
        default. The next job uses the new settings; the audit trail keeps before and
        after. Example::

            c.update_project("knee", {"training": {"budget_s": 600}, "finetune_every": 5})
        """
        return self._json("PATCH", self._p(project), ProjectOut, json=dict(changes))

    def archive_project(self, project: str) -> ProjectOut:
        """``POST .../archive`` (admins): read-only, and left out of :meth:`list_projects`."""
        return self._json("POST", f"{self._p(project)}/archive", ProjectOut)

    def restore_project(self, project: str) -> ProjectOut:
        """``POST .../restore`` (admins): bring an archived project back."""
        return self._json("POST", f"{self._p(project)}/restore", ProjectOut)

    def get_project(self, project: str) -> ProjectOut:
        """``GET /api/v1/projects/{p}`` by id or name."""
        return self._json("GET", self._p(project), ProjectOut)

    # -- reference data ------------------------------------------------------------------

    def add_reference(
        self,
        project: str,
        image: FileInput,
        mask: FileInput,
        split: str = "train",
        filename: str | None = None,
        group: str | None = None,
    ) -> ReferenceOut:
        """``POST .../reference``: one reference image + label-map mask pair for training.

        ``split`` is ``train``, ``val`` or ``test``; ``group`` a free reporting group
        (a stain, a site). Example::

            c.add_reference("knee", "images/001.png", "masks/001.png", split="val")
        """
        fields = {"image": (image, filename, "image"), "mask": (mask, None, "mask")}
        data = {"split": split, **({"group": group} if group is not None else {})}
        with self._files(fields) as files:
            return self._json(
                "POST", f"{self._p(project)}/reference", ReferenceOut, files=files, data=data
            )

    def import_reference(
        self,
        project: str,
        archive: FileInput,
        split: str | None = None,
        group: str | None = None,
        filename: str | None = None,
    ) -> ImportOut:
        """``POST .../reference/import`` (admins): a zip of pairs, imported by a job.

        The zip holds ``images/`` + ``masks/`` (paired by file stem) or a ``manifest.csv``
        (``image``, ``mask``, optional ``split`` and ``group``), at its top or in one top
        folder. ``split`` and ``group`` apply to pairs the zip gives none (left out: the
        server's rule). The job's result lists each refused pair with its reason::

            out = c.import_reference("knee", "dataset.zip")
            job = c.wait_for_job("knee", out.job.id)
            print(job.result["added"], job.result["errors"])
        """
        data = {k: v for k, v in (("split", split), ("group", group)) if v is not None}
        with self._files({"file": (archive, filename, "archive")}) as files:
            return self._json(
                "POST", f"{self._p(project)}/reference/import", ImportOut, files=files, data=data
            )

    def list_reference(
        self,
        project: str,
        split: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        group: str | None = None,
    ) -> Page[ReferenceItemOut]:
        """``GET .../reference``: the reference pairs, oldest first, of one ``split`` and/or
        ``group`` if given (``group=""``: the pairs without a group)."""
        params: dict[str, Any] = dict(_limits(limit, offset))
        if split is not None:
            params["split"] = split
        if group is not None:
            params["group"] = group
        return self._json(
            "GET", f"{self._p(project)}/reference", Page[ReferenceItemOut], params=params
        )

    def reference_summary(self, project: str) -> ReferenceSummaryOut:
        """``GET .../reference/summary``: pair counts by split and group."""
        return self._json("GET", f"{self._p(project)}/reference/summary", ReferenceSummaryOut)

    def delete_reference(self, project: str, pair_id: str) -> None:
        """``DELETE .../reference/{id}`` (admins): a pair no version trained on
        (:class:`~medloop.client.Conflict` otherwise: erase its image instead)."""
        self._send("DELETE", f"{self._p(project)}/reference/{_seg(pair_id, 'pair')}")

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

    # -- models --------------------------------------------------------------------------

    def list_models(
        self, project: str, limit: int | None = None, offset: int | None = None
    ) -> Page[ModelVersionOut]:
        """``GET .../models``: every version with status, parent, metrics and lineage."""
        return self._json(
            "GET",
            f"{self._p(project)}/models",
            Page[ModelVersionOut],
            params=_limits(limit, offset),
        )

    def get_model(self, project: str, version: str) -> ModelVersionOut:
        """``GET .../models/{v}`` (``v0003``), with its gate report."""
        return self._json("GET", self._m(project, version), ModelVersionOut)

    def promote(self, project: str, version: str, reason: str | None = None) -> ModelVersionOut:
        """``POST .../models/{v}/promote`` (admins): make ``version`` production.

        A version the gate rejected needs a ``reason`` (kept in the model's events).
        """
        kw: dict[str, Any] = {} if reason is None else {"json": {"reason": reason}}
        return self._json("POST", f"{self._m(project, version)}/promote", ModelVersionOut, **kw)

    def rollback(self, project: str) -> ModelVersionOut:
        """``POST .../models/rollback`` (admins): back to the previous production; returns it."""
        return self._json("POST", f"{self._p(project)}/models/rollback", ModelVersionOut)

    def download_model(self, project: str, version: str, dest: str | os.PathLike[str]) -> Path:
        """``GET .../models/{v}/download``: stream the version's zip to ``dest``.

        ``dest`` is a file path, or an existing folder (the file is then ``{version}.zip``
        in it). The file appears only when complete (temporary file, then rename).

        Example::

            path = c.download_model("knee", "v0003", Path("models"))  # models/v0003.zip
        """
        target = Path(dest)
        if target.is_dir():
            target = target / f"{_seg(version, 'version')}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        url = self._url(f"{self._m(project, version)}/download")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with self._http.stream("GET", url, headers=self._headers(accept="*/*")) as resp:
                        if resp.status_code >= 400:
                            resp.read()
                            raise self._api_error(resp)
                        for chunk in resp.iter_bytes(_CHUNK):
                            out.write(chunk)
                except (httpx.TransportError, httpx.InvalidURL) as err:
                    raise TransportError(f"GET {url} failed: {err}") from err
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def _m(self, project: str, version: str) -> str:
        return f"{self._p(project)}/models/{_seg(version, 'version')}"

    # -- jobs ----------------------------------------------------------------------------

    def create_job(
        self, project: str, kind: str, options: Mapping[str, Any] | None = None
    ) -> JobOut:
        """``POST .../jobs``: queue a ``train``, ``finetune``, ``evaluate`` or ``dicomweb_sync`` job.

        Options left out take the project's settings; bad ones answer 422
        (:class:`~medloop.client.BadRequest`) and nothing is queued.

        Example::

            job = c.create_job("knee", "finetune", {"steps": 300})
            job = c.wait_for_job("knee", job.id)
            print(job.state, job.result)
        """
        body = {"kind": kind, "options": dict(options or {})}
        return self._json("POST", f"{self._p(project)}/jobs", JobOut, json=body)

    def list_jobs(
        self, project: str, limit: int | None = None, offset: int | None = None
    ) -> Page[JobOut]:
        """``GET .../jobs``: the project's jobs, newest first."""
        return self._json(
            "GET", f"{self._p(project)}/jobs", Page[JobOut], params=_limits(limit, offset)
        )

    def get_job(self, project: str, job_id: str) -> JobOut:
        """``GET .../jobs/{j}``: state, progress, log tail, result or error."""
        return self._json("GET", self._j(project, job_id), JobOut)

    def cancel_job(self, project: str, job_id: str) -> JobOut:
        """``POST .../jobs/{j}/cancel``."""
        return self._json("POST", f"{self._j(project, job_id)}/cancel", JobOut)

    def job_curve(self, project: str, job_id: str, after: int = 0) -> CurveOut:
        """``GET .../jobs/{j}/curve``: a learning job's loss and validation Dice by step."""
        return self._json(
            "GET", f"{self._j(project, job_id)}/curve", CurveOut, params={"after": after}
        )

    def _j(self, project: str, job_id: str) -> str:
        return f"{self._p(project)}/jobs/{_seg(job_id, 'job')}"

    def wait_for_job(
        self,
        project: str,
        job_id: str,
        timeout: float = 600,
        poll: float = 1.0,
        on_update: Callable[[JobOut], None] | None = None,
    ) -> JobOut:
        """Poll a job until it is succeeded, failed or cancelled; return its last state.

        ``on_update`` is called with every state polled. After the first successful poll,
        connection errors and 5xx answers (a server restarting) are retried until
        ``timeout``. Raises :class:`~medloop.client.errors.JobTimeout` (a ``TimeoutError``)
        when ``timeout`` seconds pass first; a failed job is returned, not raised.

        Example::

            job = c.wait_for_job("knee", job_id, on_update=lambda j: print(j.progress))
            if job.state != "succeeded":
                print(job.error)
        """
        deadline = time.monotonic() + timeout
        job = self.get_job(project, job_id)
        while True:
            if on_update is not None:
                on_update(job)
            if job.finished:
                return job
            last_error: Exception | None = None
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobTimeout(
                        f"job {job_id} is still {job.state} "
                        f"({job.progress:.0%}) after {timeout:g} s",
                        job,
                    ) from last_error
                time.sleep(max(0.0, min(poll, remaining)))
                try:
                    job = self.get_job(project, job_id)
                    break
                except (TransportError, ServerError) as err:
                    last_error = err

    # -- audit ---------------------------------------------------------------------------

    def audit(self, limit: int = 100, offset: int = 0) -> Page[AuditEventOut]:
        """``GET /api/v1/audit`` (admins): audit events, newest first."""
        return self._json("GET", f"{API}/audit", Page[AuditEventOut], params=_limits(limit, offset))

    # -- users and tokens (admins of every project) ----------------------------------------

    def list_users(self) -> Page[UserOut]:
        """``GET /api/v1/users``: people and devices with their role, scope and last use."""
        return self._json("GET", f"{API}/users", Page[UserOut])

    def create_user(
        self,
        name: str,
        role: str,
        *,
        kind: str | None = None,
        project: str | None = None,
        expires_in_days: float | Literal["default"] | None = DEFAULT,
        token_name: str | None = None,
    ) -> NewUserOut:
        """``POST /api/v1/users``: a user and its first token (``.token.token``, shown once).

        ``kind``: ``person`` or ``device``; ``expires_in_days``: ``None`` for never, left
        as :data:`DEFAULT` for the server's rule (people expire, devices do not).
        """
        body: dict[str, Any] = {"name": name, "role": role}
        body |= {k: v for k, v in (("kind", kind), ("project", project)) if v is not None}
        if token_name is not None:
            body["token_name"] = token_name
        if expires_in_days != DEFAULT:
            body["expires_in_days"] = expires_in_days
        return self._json("POST", f"{API}/users", NewUserOut, json=body)

    def get_user(self, user: str) -> UserOut:
        """``GET /api/v1/users/{u}`` by id or name."""
        return self._json("GET", self._u(user), UserOut)

    def update_user(
        self,
        user: str,
        *,
        role: str | None = None,
        project: str | None = None,
        every_project: bool = False,
        disabled: bool | None = None,
    ) -> UserOut:
        """``PATCH /api/v1/users/{u}``: role, scope (``every_project`` unbinds), disabled."""
        body: dict[str, Any] = {}
        if role is not None:
            body["role"] = role
        if project is not None or every_project:
            body["project"] = None if every_project else project
        if disabled is not None:
            body["disabled"] = disabled
        return self._json("PATCH", self._u(user), UserOut, json=body)

    def list_tokens(self, user: str) -> Page[TokenOut]:
        """``GET /api/v1/users/{u}/tokens``: the user's tokens (never their secrets)."""
        return self._json("GET", f"{self._u(user)}/tokens", Page[TokenOut])

    def issue_token(
        self,
        user: str,
        name: str | None = None,
        expires_in_days: float | Literal["default"] | None = DEFAULT,
    ) -> NewTokenOut:
        """``POST /api/v1/users/{u}/tokens``: another token; its secret is ``.token``, shown once."""
        body: dict[str, Any] = {} if name is None else {"name": name}
        if expires_in_days != DEFAULT:
            body["expires_in_days"] = expires_in_days
        return self._json("POST", f"{self._u(user)}/tokens", NewTokenOut, json=body)

    def revoke_token(self, user: str, token_id: str) -> TokenOut:
        """``POST .../tokens/{t}/revoke``: the token answers 401 from the next request on."""
        path = f"{self._u(user)}/tokens/{_seg(token_id, 'token')}/revoke"
        return self._json("POST", path, TokenOut)

    @staticmethod
    def _u(user: str) -> str:
        return f"{API}/users/{_seg(user, 'user')}"

    # -- erasure (admins) ----------------------------------------------------------------

    def preview_erasure(self, project: str, scope: str, value: str) -> ErasurePreviewOut:
        """``POST .../erasures/preview``: what erasing a ``patient`` (Patient ID), ``study``
        (Study Instance UID) or ``image`` (its id) would remove; nothing is removed."""
        body = {"scope": scope, "value": value}
        return self._json(
            "POST", f"{self._p(project)}/erasures/preview", ErasurePreviewOut, json=body
        )

    def erase(self, project: str, scope: str, value: str, reason: str) -> ErasureRequestOut:
        """``POST .../erasures``: erase the data (a job; audited with who and why).

        Model versions that trained on it stay; their lineage keeps only ids and sha256,
        marked erased. Example::

            out = c.erase("knee", "patient", "PAT-0042", "the patient withdrew consent")
            c.wait_for_job("knee", out.job.id)
        """
        body = {"scope": scope, "value": value, "reason": reason}
        return self._json("POST", f"{self._p(project)}/erasures", ErasureRequestOut, json=body)

    def list_erasures(self, project: str) -> Page[ErasureOut]:
        """``GET .../erasures``: the project's erasures, newest first."""
        return self._json("GET", f"{self._p(project)}/erasures", Page[ErasureOut])
