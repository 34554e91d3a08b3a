"""DICOM rows: a project's DICOM settings, the DICOMweb sync ledger, pseudonyms.

Every function works inside the caller's session and transaction: it flushes, never
commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medloop.domain.records import DicomInstanceRecord, ProjectRecord, PseudonymRecord
from medloop.storage._repo_base import check_choice, get_or_raise, page
from medloop.storage.mapping import dicom_instance_record, project_record, pseudonym_record
from medloop.storage.models import (
    DICOM_INSTANCE_KINDS,
    DICOM_INSTANCE_STATES,
    DicomInstance,
    Project,
    Pseudonym,
    utcnow,
)

__all__ = [
    "add_dicom_instance",
    "add_pseudonyms",
    "all_dicom_settings",
    "count_dicom_instances",
    "due_dicom_instances",
    "find_dicom_instance",
    "get_dicom_settings",
    "known_sop_uids",
    "list_dicom_instances",
    "list_pseudonyms",
    "projects_with_dicomweb",
    "reverse_pseudonyms",
    "set_dicom_settings",
    "update_dicom_instance",
]


def get_dicom_settings(session: Session, project_id: str) -> dict[str, Any]:
    """The project's DICOM settings (``{}`` when none)."""
    project = get_or_raise(session, Project, "project", project_id)
    return dict(project.dicom or {})


def set_dicom_settings(
    session: Session, project_id: str, settings: dict[str, Any]
) -> ProjectRecord:
    """Replace the project's DICOM settings (the caller validates and audits)."""
    project = get_or_raise(session, Project, "project", project_id)
    project.dicom = dict(settings)
    session.flush()
    return project_record(project)


def all_dicom_settings(session: Session, *, for_update: bool = False) -> dict[str, dict[str, Any]]:
    """Every project's stored DICOM settings that are not empty, by project id."""
    query = select(Project.id, Project.dicom).order_by(Project.id)
    if for_update and session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return {pid: dict(raw) for pid, raw in session.execute(query) if raw}


def projects_with_dicomweb(session: Session) -> list[ProjectRecord]:
    """Projects whose DICOM settings name a DICOMweb server (enabled or not); archived
    projects are left out (they are not polled)."""
    return [
        project_record(p)
        for p in session.scalars(select(Project).where(Project.archived_at.is_(None)))
        if (p.dicom or {}).get("dicomweb")
    ]


def known_sop_uids(session: Session, project_id: str, uids: Iterable[str]) -> set[str]:
    """Which of ``uids`` the project's sync ledger already holds."""
    wanted = list(dict.fromkeys(uids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            session.scalars(
                select(DicomInstance.sop_instance_uid).where(
                    DicomInstance.project_id == project_id,
                    DicomInstance.sop_instance_uid.in_(chunk),
                )
            )
        )
    return found


def add_dicom_instance(
    session: Session,
    *,
    project_id: str,
    sop_instance_uid: str,
    study_instance_uid: str,
    series_instance_uid: str,
    sop_class_uid: str,
    kind: str,
    state: str = "pending",
    detail: dict[str, Any] | None = None,
) -> DicomInstanceRecord:
    """Record an instance seen on the PACS; idempotent per ``(project, SOP Instance UID)``."""
    check_choice("kind", kind, DICOM_INSTANCE_KINDS)
    check_choice("state", state, DICOM_INSTANCE_STATES)
    existing = _find(session, project_id, sop_instance_uid)
    if existing is not None:
        return dicom_instance_record(existing)
    row = DicomInstance(
        project_id=project_id,
        sop_instance_uid=sop_instance_uid,
        study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid,
        sop_class_uid=sop_class_uid,
        kind=kind,
        state=state,
        attempts=0,
        detail=dict(detail or {}),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = _find(session, project_id, sop_instance_uid)
        if existing is None:
            raise
        return dicom_instance_record(existing)
    return dicom_instance_record(row)


def _find(session: Session, project_id: str, sop_instance_uid: str) -> DicomInstance | None:
    return session.scalars(
        select(DicomInstance).where(
            DicomInstance.project_id == project_id,
            DicomInstance.sop_instance_uid == sop_instance_uid,
        )
    ).one_or_none()


def find_dicom_instance(
    session: Session, project_id: str, sop_instance_uid: str
) -> DicomInstanceRecord | None:
    """The ledger row of an instance, or ``None``."""
    row = _find(session, project_id, sop_instance_uid)
    return None if row is None else dicom_instance_record(row)


def due_dicom_instances(
    session: Session, project_id: str, kind: str, now: datetime, limit: int
) -> list[DicomInstanceRecord]:
    """Instances of ``kind`` with work left (pending or analysed) whose retry time has come."""
    query = (
        select(DicomInstance)
        .where(
            DicomInstance.project_id == project_id,
            DicomInstance.kind == kind,
            DicomInstance.state.in_(("pending", "analysed")),
            or_(DicomInstance.next_attempt_at.is_(None), DicomInstance.next_attempt_at <= now),
        )
        .order_by(DicomInstance.created_at, DicomInstance.id)
        .limit(limit)
    )
    return [dicom_instance_record(row) for row in session.scalars(query)]


def update_dicom_instance(session: Session, instance_id: str, **values: Any) -> DicomInstanceRecord:
    """Change a ledger row's ``state``, ``attempts``, ``next_attempt_at``, ``last_error``,
    ``image_id`` or ``detail``."""
    row = get_or_raise(session, DicomInstance, "DICOM instance", instance_id)
    allowed = {"state", "attempts", "next_attempt_at", "last_error", "image_id", "detail"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    if "state" in values:
        check_choice("state", values["state"], DICOM_INSTANCE_STATES)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    session.flush()
    return dicom_instance_record(row)


def list_dicom_instances(
    session: Session, project_id: str, state: str | None = None, limit: int = 100
) -> list[DicomInstanceRecord]:
    """A project's ledger rows, most recently changed first."""
    limit, _ = page(limit, 0)
    query = select(DicomInstance).where(DicomInstance.project_id == project_id)
    if state is not None:
        query = query.where(
            DicomInstance.state == check_choice("state", state, DICOM_INSTANCE_STATES)
        )
    query = query.order_by(DicomInstance.updated_at.desc(), DicomInstance.id).limit(limit)
    return [dicom_instance_record(row) for row in session.scalars(query)]


def count_dicom_instances(session: Session, project_id: str) -> dict[str, dict[str, int]]:
    """``{kind: {state: count}}`` of a project's ledger."""
    query = (
        select(DicomInstance.kind, DicomInstance.state, func.count())
        .where(DicomInstance.project_id == project_id)
        .group_by(DicomInstance.kind, DicomInstance.state)
    )
    out: dict[str, dict[str, int]] = {}
    for kind, state, count in session.execute(query):
        out.setdefault(str(kind), {})[str(state)] = int(count)
    return out


def add_pseudonyms(
    session: Session, project_id: str, entries: Iterable[tuple[str, str, str]]
) -> int:
    """Record ``(kind, original, pseudonym)`` entries not known yet; returns how many were new."""
    added = 0
    for kind, original, pseudonym in dict.fromkeys(entries):
        exists = session.scalars(
            select(Pseudonym.id).where(
                Pseudonym.project_id == project_id,
                Pseudonym.kind == kind,
                Pseudonym.original == original,
            )
        ).first()
        if exists is not None:
            continue
        try:
            with session.begin_nested():
                session.add(
                    Pseudonym(
                        project_id=project_id, kind=kind, original=original, pseudonym=pseudonym
                    )
                )
            added += 1
        except IntegrityError:
            continue  # another ingest of the same patient won the race: same pseudonym
    return added


def list_pseudonyms(
    session: Session, project_id: str, limit: int = 1000, offset: int = 0
) -> list[PseudonymRecord]:
    """A project's pseudonym map, oldest first."""
    limit, offset = page(min(limit, 1000), offset)
    query = (
        select(Pseudonym)
        .where(Pseudonym.project_id == project_id)
        .order_by(Pseudonym.created_at, Pseudonym.id)
        .limit(limit)
        .offset(offset)
    )
    return [pseudonym_record(row) for row in session.scalars(query)]


def reverse_pseudonyms(
    session: Session, project_id: str, pseudonyms: Iterable[str]
) -> dict[tuple[str, str], str]:
    """``{(kind, pseudonym): original}`` for those of ``pseudonyms`` the map holds."""
    wanted = list(dict.fromkeys(pseudonyms))
    out: dict[tuple[str, str], str] = {}
    for start in range(0, len(wanted), 500):
        query = select(Pseudonym).where(
            Pseudonym.project_id == project_id, Pseudonym.pseudonym.in_(wanted[start : start + 500])
        )
        for row in session.scalars(query):
            out[(row.kind, row.pseudonym)] = row.original
    return out
