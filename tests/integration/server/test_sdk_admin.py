"""Running a server from the Python SDK: projects, reference zips, curves, users, erasure."""

from __future__ import annotations

import io
import zipfile

import pytest

from medloop.client import BadRequest, Conflict, MedloopClient, NotFound, Unauthorized

from .conftest import Server, image_bytes, mask_bytes


@pytest.fixture
def sdk(server: Server) -> MedloopClient:
    return MedloopClient("", server.tokens["admin"], http_client=server.client)


def _zip(server: Server) -> bytes:
    """One good pair and one whose image is not an image."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("images/a.png", image_bytes(server, 0))
        zf.writestr("masks/a.png", mask_bytes(server, 0))
        zf.writestr("images/b.png", b"not an image")
        zf.writestr("masks/b.png", mask_bytes(server, 0))
    return buf.getvalue()


def test_projects_and_reference_data(server: Server, sdk: MedloopClient) -> None:
    made = sdk.create_project(
        "sdk-cells", [{"value": 1, "name": "cell", "color": "#00ff00"}], spatial_dims=2
    )
    assert made.spatial_dims == 2 and made.archived_at is None
    changed = sdk.update_project("sdk-cells", {"training": {"budget_s": 60}, "finetune_every": 4})
    assert changed.training.budget_s == 60 and changed.finetune_every == 4
    with pytest.raises(BadRequest, match="budget_s"):
        sdk.update_project("sdk-cells", {"training": {"budget_s": 1}})
    out = sdk.import_reference("sdk-cells", _zip(server), group="g1", filename="two.zip")
    assert out.pairs == 2
    job = sdk.wait_for_job("sdk-cells", out.job.id, timeout=120, poll=0.1)
    assert job.result is not None and (job.result["added"], job.result["failed"]) == (1, 1)
    pairs = sdk.list_reference("sdk-cells", group="g1")
    assert pairs.total == 1 and pairs.items[0].filename == "a.png"
    assert sdk.reference_summary("sdk-cells").groups == {"g1": 1}
    sdk.delete_reference("sdk-cells", pairs.items[0].id)
    assert sdk.list_reference("sdk-cells").total == 0
    with pytest.raises(NotFound):
        sdk.delete_reference("sdk-cells", pairs.items[0].id)
    assert sdk.archive_project("sdk-cells").archived_at is not None
    assert "sdk-cells" in [p.name for p in sdk.list_projects(archived=True).items]
    with pytest.raises(Conflict, match="archived"):
        sdk.update_project("sdk-cells", {"finetune_every": 1})
    assert sdk.restore_project("sdk-cells").archived_at is None


def test_curves_users_tokens_and_erasure(server: Server, sdk: MedloopClient) -> None:
    train = next(j for j in sdk.list_jobs("discs").items if j.kind == "train")
    curve = sdk.job_curve("discs", train.id)
    assert curve.points and {p["metric"] for p in curve.points} >= {"loss"}
    assert sdk.job_curve("discs", train.id, after=curve.last).points == []
    made = sdk.create_user("sdk-device", "annotator", kind="device", project="discs")
    assert made.token.expires_at is None and made.user.kind == "device"
    person = sdk.create_user("sdk-person", "viewer", expires_in_days=None)
    assert person.token.expires_at is None
    extra = sdk.issue_token("sdk-device", "second", expires_in_days=1)
    assert extra.expires_at is not None and extra.token.startswith("mlp_")
    device = MedloopClient("", extra.token, http_client=server.client)
    assert device.me().name == "sdk-device"
    assert sdk.revoke_token("sdk-device", extra.id).active is False
    with pytest.raises(Unauthorized):
        device.me()
    assert {t.name for t in sdk.list_tokens("sdk-device").items} == {"initial", "second"}
    assert sdk.update_user("sdk-person", disabled=True).disabled
    assert sdk.update_user("sdk-device", every_project=True).project_id is None
    assert "sdk-person" in [u.name for u in sdk.list_users().items]
    a = sdk.analyze("discs", file=image_bytes(server, 11), filename="eleven.png")
    preview = sdk.preview_erasure("discs", "image", a.image_id)
    assert preview.counts["analysis"] == 1
    out = sdk.erase("discs", "image", a.image_id, "test data")
    assert sdk.wait_for_job("discs", out.job.id, timeout=120, poll=0.1).state == "succeeded"
    assert sdk.list_erasures("discs").items[0].id == out.erasure.id
    with pytest.raises(NotFound):
        sdk.get_analysis("discs", a.id)
