"""The loss and validation Dice a learning job reports while it runs (its live curve).

Every function works inside the caller's session and transaction: it flushes, never
commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from medloop.domain.jobs import CurvePoint
from medloop.storage._repo_base import check_choice
from medloop.storage.models import CURVE_METRICS, JobCurvePoint

__all__ = ["add_curve_points", "curve_points"]

MAX_POINTS = 5000
"""At most this many points of one job are read back (a curve needs no more)."""


def add_curve_points(
    session: Session, job_id: str, attempt: int, points: Iterable[CurvePoint]
) -> int:
    """Append ``points`` to the job's curve; returns how many."""
    rows = [
        JobCurvePoint(
            job_id=job_id,
            attempt=attempt,
            step=p.step,
            metric=check_choice("metric", p.metric, CURVE_METRICS),
            value=p.value,
        )
        for p in points
    ]
    session.add_all(rows)
    session.flush()
    return len(rows)


def curve_points(session: Session, job_id: str, after: int = 0) -> list[tuple[int, CurvePoint]]:
    """``(id, point)`` of the job's curve in the order written, those after id ``after``.

    A job that was interrupted and resumed reports from its last checkpoint again:
    only the latest attempt's points are returned.
    """
    latest = select(JobCurvePoint.attempt).where(JobCurvePoint.job_id == job_id)
    attempt = session.scalar(latest.order_by(JobCurvePoint.id.desc()).limit(1))
    if attempt is None:
        return []
    query = (
        select(JobCurvePoint)
        .where(
            JobCurvePoint.job_id == job_id,
            JobCurvePoint.attempt == attempt,
            JobCurvePoint.id > after,
        )
        .order_by(JobCurvePoint.id)
        .limit(MAX_POINTS)
    )
    return [
        (int(r.id), CurvePoint(int(r.step), str(r.metric), float(r.value)))
        for r in session.scalars(query)
    ]
