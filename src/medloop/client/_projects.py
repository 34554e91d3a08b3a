"""The SDK's service, project and reference-data endpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medloop.client._base import (
    API,
    ClientBase,
    FileInput,
    _limits,
    _seg,
    _set,
)
from medloop.client.admin_models import (
    ImportOut,
    ReferenceItemOut,
    ReferenceSummaryOut,
)
from medloop.client.models import (
    AcceptanceRule,
    Health,
    Label,
    Learning,
    Me,
    Page,
    ProjectIn,
    ProjectOut,
    ReferenceOut,
    Training,
)

__all__ = ["ProjectsApi"]


class ProjectsApi(ClientBase):
    """The SDK's service, project and reference-data endpoints."""

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
