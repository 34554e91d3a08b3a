"""What monitoring reads: liveness and the server's gauges."""

from __future__ import annotations

from collections.abc import Callable

from medloop.jobs.queue import JobQueue
from medloop.storage import repo_versions
from medloop.storage import repositories as repo
from medloop.storage.database import Database

__all__ = ["Gauges", "System"]

Gauges = dict[str, list[tuple[dict[str, str], float]]]
"""``{metric name: [(labels, value), ...]}``."""


class System:
    """Health and gauges.

    Args:
        db: the database.
        queue: the job queue.
        worker_running: whether this process's job worker runs.
    """

    def __init__(
        self, db: Database, queue: JobQueue, worker_running: Callable[[], bool] = lambda: False
    ) -> None:
        self.db, self.queue, self.worker_running = db, queue, worker_running

    def health(self) -> bool:
        """Whether the job worker runs; raises if the database cannot be reached."""
        self.db.ping()
        return self.worker_running()

    def gauges(self) -> Gauges:
        """Queue depth, each project's production version number and correction count."""
        out: Gauges = {
            "medloop_job_queue_depth": [({}, float(self.queue.depth()))],
            "medloop_model_production_version": [],
            "medloop_corrections_total": [],
        }
        with self.db.read() as s:
            production = repo_versions.production_versions(s)
            for p in repo.list_projects(s):
                prod = production.get(p.id)
                if prod is not None:
                    out["medloop_model_production_version"].append(
                        ({"project": p.name, "version": prod}, float(int(prod[1:])))
                    )
                out["medloop_corrections_total"].append(
                    ({"project": p.name}, float(repo.count_corrections(s, p.id)))
                )
        return out
