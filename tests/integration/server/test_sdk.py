"""The whole API through the Python SDK, against the in-process app (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medloop.client import Conflict, Forbidden, MedloopClient, NotFound, Unauthorized

from .conftest import Server, image_bytes, mask_bytes


@pytest.fixture
def sdk(server: Server) -> MedloopClient:
    return MedloopClient("", server.tokens["admin"], http_client=server.client)


def test_sdk_covers_the_loop(server: Server, sdk: MedloopClient, tmp_path: Path) -> None:
    assert sdk.health().status == "ok"
    assert sdk.me().role == "admin"
    assert [p.name for p in sdk.list_projects().items] == ["discs", "other"]
    project = sdk.get_project("discs")
    assert project.production_version == "v0001"
    img = sdk.upload_image("discs", image_bytes(server, 10), filename="ten.png")
    assert sdk.get_image("discs", img.id).sha256 == img.sha256
    assert sdk.download_image("discs", img.id) == image_bytes(server, 10)
    a = sdk.analyze("discs", image_id=img.id)
    assert a.model_version == "v0001" and a.image_id == img.id
    assert sdk.get_analysis("discs", a.id).id == a.id
    assert sdk.analysis_mask("discs", a.id)[:4] == b"\x89PNG"
    assert sdk.analysis_overlay("discs", a.id)[:4] == b"\x89PNG"
    assert any(it.analysis.id == a.id for it in sdk.review_queue("discs", limit=200).items)
    corr = sdk.correct("discs", a.id, mask_bytes(server, 10))
    assert corr.analysis_id == a.id and 0.0 <= corr.dice_vs_prediction <= 1.0
    assert any(c.id == corr.id for c in sdk.list_corrections("discs").items)
    assert all(it.analysis.id != a.id for it in sdk.review_queue("discs", limit=200).items)
    models = sdk.list_models("discs").items
    assert models[0].version == "v0001" and models[0].lineage["kind"] == "train"
    zipped = sdk.download_model("discs", "v0001", tmp_path)
    assert zipped.stat().st_size > 1000
    job = sdk.create_job("discs", "evaluate", {"split": "val"})
    done = sdk.wait_for_job("discs", job.id, timeout=120, poll=0.2)
    assert done.state == "succeeded", done.error
    assert done.result is not None and done.result["version"] == "v0001"
    assert any(e.action == "analysis.create" for e in sdk.audit(limit=500).items)


def test_sdk_errors(server: Server) -> None:
    viewer = MedloopClient("", server.tokens["viewer"], http_client=server.client)
    with pytest.raises(Forbidden):
        viewer.rollback("discs")
    with pytest.raises(NotFound):
        viewer.get_project("other")
    with pytest.raises(Unauthorized):
        MedloopClient("", "mlp_wrong", http_client=server.client).me()
    admin = MedloopClient("", server.tokens["admin"], http_client=server.client)
    with pytest.raises(Conflict):
        admin.rollback("discs")  # v0001 is the only production version so far
