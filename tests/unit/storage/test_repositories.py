"""Repositories: idempotent images, the review queue, correction numbering, tokens, audit."""

from __future__ import annotations

import hashlib
import threading

import pytest
from sqlalchemy.orm import Session, sessionmaker

from medloop.domain.records import AnalysisRecord, ImageRecord
from medloop.errors import ConflictError, InputError, NotFoundError
from medloop.storage import repositories as repo

from .dbfixtures import settings_of


def _sha(i: int | str) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def _image(s: Session, project_id: str, n: int | str = 1, **kw: object) -> ImageRecord:
    args: dict[str, object] = {
        "project_id": project_id,
        "sha256": _sha(n),
        "blob_key": _sha(n),
        "filename": f"img{n}.png",
        "content_type": "image/png",
        "width": 4,
        "height": 3,
        "channels": 1,
    }
    args.update(kw)
    return repo.create_image(s, **args)[0]  # type: ignore[arg-type]


def _analysis(s: Session, project_id: str, image_id: str, uncertainty: float) -> AnalysisRecord:
    return repo.create_analysis(
        s,
        project_id=project_id,
        image_id=image_id,
        model_version="v0001",
        label_blob_key=_sha(f"label{uncertainty}"),
        label_sha256=_sha(f"label{uncertainty}"),
        uncertainty=uncertainty,
        measurements=[{"value": 1, "area_px": 10}],
    )


def test_projects(sessions: sessionmaker[Session], project_id: str) -> None:
    with sessions.begin() as s:
        with pytest.raises(ConflictError, match="'p1'"):
            repo.create_project(s, "p1", settings_of())
        # the failed insert was rolled back to a savepoint: the session goes on
        other = repo.create_project(s, "p2", settings_of())
    with sessions() as s:
        assert repo.get_project(s, project_id).settings.finetune_every == 5
        assert repo.find_project(s, "p2").id == other.id == repo.find_project(s, other.id).id
        assert repo.get_project_by_name(s, "p2").id == other.id
        assert [p.name for p in repo.list_projects(s)] == ["p1", "p2"]
        assert [p.name for p in repo.list_projects(s, ids=[other.id])] == ["p2"]
        with pytest.raises(NotFoundError, match="nope"):
            repo.get_project(s, "nope")
    with sessions.begin() as s:
        repo.update_project(s, project_id, settings_of(finetune_every=2))
    with sessions() as s:
        assert repo.get_project(s, project_id).settings.finetune_every == 2


def test_image_create_is_idempotent_per_project(
    sessions: sessionmaker[Session], project_id: str
) -> None:
    with sessions.begin() as s:
        first = _image(s, project_id, 1, filename="../../etc/pa\x00ss wd.png")
        again = _image(s, project_id, 1, filename="other.png")
        other_project = repo.create_project(s, "p2", settings_of())
        elsewhere = _image(s, other_project.id, 1)
    assert again.id == first.id
    assert elsewhere.id != first.id
    assert first.filename == "pa_ss wd.png"
    with sessions() as s:
        assert repo.count_images(s, project_id) == 1
        assert repo.find_image(s, project_id, _sha(1)) is not None
        assert repo.find_image(s, project_id, _sha(2)) is None
        assert repo.get_image(s, first.id, project_id).sha256 == _sha(1)
        with pytest.raises(NotFoundError, match=first.id):
            repo.get_image(s, first.id, other_project.id)  # another project's image: not found
        assert [i.id for i in repo.list_images(s, project_id)] == [first.id]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("a/b/c.png", "c.png"), ("C:\\x\\y.dcm", "y.dcm"), ("..", "upload"), ("", "upload")],
)
def test_sanitize_filename(raw: str, clean: str) -> None:
    assert repo.sanitize_filename(raw) == clean


def test_reference_pairs(sessions: sessionmaker[Session], project_id: str) -> None:
    with sessions.begin() as s:
        image = _image(s, project_id, 1)
        pair = repo.add_reference_pair(
            s,
            project_id=project_id,
            image_id=image.id,
            mask_blob_key=_sha("m"),
            mask_sha256=_sha("m"),
            split="val",
        )
        same = repo.add_reference_pair(
            s,
            project_id=project_id,
            image_id=image.id,
            mask_blob_key=_sha("m"),
            mask_sha256=_sha("m"),
            split="val",
        )
        assert same.id == pair.id
        with pytest.raises(ConflictError):
            repo.add_reference_pair(
                s,
                project_id=project_id,
                image_id=image.id,
                mask_blob_key=_sha("n"),
                mask_sha256=_sha("n"),
                split="val",
            )
        with pytest.raises(InputError, match="split"):
            repo.add_reference_pair(
                s,
                project_id=project_id,
                image_id=image.id,
                mask_blob_key=_sha("n"),
                mask_sha256=_sha("n"),
                split="holdout",
            )
    with sessions() as s:
        assert len(repo.list_reference_pairs(s, project_id)) == 1
        assert repo.list_reference_pairs(s, project_id, split="train") == []


def test_review_queue_order_and_corrections(
    sessions: sessionmaker[Session], project_id: str
) -> None:
    with sessions.begin() as s:
        image = _image(s, project_id, 1)
        low = _analysis(s, project_id, image.id, 0.1)
        high_old = _analysis(s, project_id, image.id, 0.9)
        mid = _analysis(s, project_id, image.id, 0.5)
        high_new = _analysis(s, project_id, image.id, 0.9)
    with sessions() as s:
        queue = [a.id for a, _ in repo.review_queue(s, project_id)]
        assert queue == [high_old.id, high_new.id, mid.id, low.id]
        assert [a.id for a, _ in repo.review_queue(s, project_id, limit=2, offset=1)] == [
            high_new.id,
            mid.id,
        ]
        assert repo.review_queue_size(s, project_id) == 4
        assert repo.next_correction_seq(s, project_id) == 0

    with sessions.begin() as s:
        for analysis in (high_old, mid, low):
            repo.create_correction(
                s,
                project_id=project_id,
                analysis_id=analysis.id,
                mask_blob_key=_sha("c"),
                mask_sha256=_sha("c"),
                dice_vs_prediction=0.8,
                author_id=None,
                held_out=lambda seq: seq == 1,
            )
    with sessions() as s:
        assert [a.id for a, _ in repo.review_queue(s, project_id)] == [high_new.id]
        corrections = repo.list_corrections(s, project_id)
        assert [c.seq for c in corrections] == [0, 1, 2]
        assert [c.held_out for c in corrections] == [False, True, False]
        assert corrections[0].model_version == "v0001"
        assert corrections[0].image_id == image.id
        assert repo.next_correction_seq(s, project_id) == 3
        assert repo.count_corrections_since(s, project_id, 1) == 2
        assert repo.count_corrections_since(s, project_id, 3) == 0
        assert repo.count_corrections(s, project_id, held_out=False) == 2
        assert [c.seq for c in repo.list_corrections(s, project_id, held_out=True)] == [1]
        assert len(repo.list_corrections(s, project_id, analysis_id=mid.id)) == 1
        assert repo.get_correction(s, corrections[0].id, project_id).seq == 0


def test_correction_of_another_projects_analysis_is_not_found(
    sessions: sessionmaker[Session], project_id: str
) -> None:
    with sessions.begin() as s:
        other = repo.create_project(s, "p2", settings_of())
        analysis = _analysis(s, project_id, _image(s, project_id).id, 0.3)
    with pytest.raises(NotFoundError, match=analysis.id), sessions.begin() as s:
        repo.create_correction(
            s,
            project_id=other.id,
            analysis_id=analysis.id,
            mask_blob_key=_sha("c"),
            mask_sha256=_sha("c"),
            dice_vs_prediction=0.5,
            author_id=None,
        )


def test_user_validation(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        with pytest.raises(InputError, match="superuser"):
            repo.create_user(s, "x", "superuser")
        with pytest.raises(NotFoundError):
            repo.create_user(s, "x", "viewer", project_id="0" * 32)
        repo.create_user(s, "x", "viewer")
        with pytest.raises(InputError, match="robot"):
            repo.create_user(s, "y", "viewer", kind="robot")
        with pytest.raises(ConflictError, match="'x'"):
            repo.create_user(s, "x", "viewer")
        assert [u.name for u in repo.list_users(s)] == ["x"]
        assert repo.get_user_by_name(s, "y") is None


def test_audit_log_is_append_only(sessions: sessionmaker[Session], project_id: str) -> None:
    with sessions.begin() as s:
        first = repo.record_event(
            s,
            action="image.create",
            resource_type="image",
            actor_name="dr-a",
            resource_id="i1",
            project_id=project_id,
            client_ip="127.0.0.1",
        )
        repo.record_event(
            s,
            action="analysis.read",
            resource_type="analysis",
            actor_name="anonymous",
            outcome="denied",
            detail={"reason": "no token"},
        )
        with pytest.raises(InputError, match="outcome"):
            repo.record_event(s, action="x", resource_type="x", actor_name="a", outcome="meh")
    with sessions() as s:
        events = repo.list_events(s)
        assert [e.action for e in events] == ["analysis.read", "image.create"]
        assert events[0].outcome == "denied" and events[0].detail == {"reason": "no token"}
        assert [e.id for e in repo.list_events(s, project_id=project_id)] == [first.id]
        assert repo.list_events(s, limit=1, offset=1)[0].id == first.id
        assert events[1].at.tzinfo is not None
    names = [n for n in repo.__all__ if "event" in n]
    assert sorted(names) == ["list_events", "record_event"]


def test_referenced_blob_keys(sessions: sessionmaker[Session], project_id: str) -> None:
    with sessions.begin() as s:
        image = _image(s, project_id, 7)
        analysis = _analysis(s, project_id, image.id, 0.2)
    with sessions() as s:
        assert repo.referenced_blob_keys(s) == {image.blob_key, analysis.label_blob_key}


def test_concurrent_writers(sessions: sessionmaker[Session], project_id: str) -> None:
    """Many threads storing the same image and correcting at once: exact counts, no errors."""
    with sessions.begin() as s:
        analysis = _analysis(s, project_id, _image(s, project_id, "base").id, 0.5)
    errors: list[BaseException] = []
    start = threading.Barrier(10)

    def client(n: int) -> None:
        try:
            start.wait()
            for _ in range(3):
                with sessions.begin() as s:
                    _image(s, project_id, "same")
                with sessions.begin() as s:
                    repo.create_correction(
                        s,
                        project_id=project_id,
                        analysis_id=analysis.id,
                        mask_blob_key=_sha(n),
                        mask_sha256=_sha(n),
                        dice_vs_prediction=0.9,
                        author_id=None,
                    )
        except BaseException as err:  # collected for the main thread
            errors.append(err)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with sessions() as s:
        assert repo.count_images(s, project_id) == 2
        assert [c.seq for c in repo.list_corrections(s, project_id)] == list(range(30))
