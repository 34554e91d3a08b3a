"""``medloop remote refine`` and the SDK's refine/segment against a mocked server."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from typer.testing import CliRunner

from medloop.cli import remote
from medloop.client import Click, InvalidArgument, MedloopClient

from .conftest import PNG, Server, body

P = "/api/v1/projects/retina"
ENV = {"MEDLOOP_TOKEN": "tok", "COLUMNS": "250"}


def refined(**kw: Any) -> dict[str, Any]:
    return {
        "analysis_id": "a1",
        "image_id": "i1",
        "frame": 0,
        "model_version": "v0003",
        "clicks": 2,
        "box": None,
        "box_label": None,
        "width": 8,
        "height": 8,
        "mask_png": base64.b64encode(PNG).decode(),
        "dice_vs_prediction": [{"label": 1, "name": "disc", "dice": 0.75}],
        "changed_pixels": 5,
    } | kw


def test_the_sdk_sends_clicks_and_boxes(client: MedloopClient, server: Server) -> None:
    server.on("POST", f"{P}/analyses/a1/refine", json_body=refined())
    r = client.refine(
        "retina",
        "a1",
        [Click(x=3, y=4.5, label=1), {"x": 1, "y": 2, "label": 1, "positive": False}],
        box=[0, 0, 5, 5],
        reset=True,
    )
    assert r.mask == PNG and r.dice_vs_prediction is not None
    assert r.dice_vs_prediction[0].dice == 0.75 and r.clicks == 2
    assert body(server.last) == {
        "clicks": [
            {"x": 3.0, "y": 4.5, "label": 1, "positive": True},
            {"x": 1.0, "y": 2.0, "label": 1, "positive": False},
        ],
        "box": [0.0, 0.0, 5.0, 5.0],
        "box_label": 1,
        "reset": True,
    }
    server.on("POST", f"{P}/images/i1/segment", json_body=refined(analysis_id=None))
    seg = client.segment("retina", "i1", clicks=[Click(x=1, y=1, label=1)], frame=2)
    assert seg.analysis_id is None and body(server.last)["frame"] == 2
    with pytest.raises(InvalidArgument, match="clicks= or box="):
        client.segment("retina", "i1")
    with pytest.raises(InvalidArgument, match="x, y and label"):
        client.refine("retina", "a1", [{"x": 1}])


class Fake:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def refine(self, *args: Any, **kw: Any) -> Any:
        from medloop.client import RefineOut

        self.calls.append((*args, kw))
        return RefineOut.model_validate(refined())

    def close(self) -> None:
        pass


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    made = Fake()
    monkeypatch.setattr(remote, "_client", lambda server, token: made)
    return made


def test_the_cli_parses_clicks_and_prints_the_dice(fake: Fake) -> None:
    args = ["refine", "a1", "-p", "retina", "--click", "3,4,1", "--click", "5.5, 6, 1, neg"]
    res = CliRunner().invoke(remote.remote_app, [*args, "--box", "0,0,7,7"], env=ENV)
    assert res.exit_code == 0, res.output
    ((project, analysis, clicks, kw),) = fake.calls
    assert (project, analysis) == ("retina", "a1")
    assert clicks == [Click(x=3, y=4, label=1), Click(x=5.5, y=6, label=1, positive=False)]
    assert kw == {"box": [0.0, 0.0, 7.0, 7.0], "reset": False}
    assert (
        "2 clicks so far (model v0003); 5 pixels changed; Dice vs the prediction: disc 0.7500"
        in (res.output)
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--click", "3,4"], "expected x,y,label"),
        (["--click", "3,4,one"], "expected x,y,label"),
        (["--click", "3,4,1,maybe"], "expected x,y,label"),
        (["--box", "1,2,3"], "expected x0,y0,x1,y1"),
        (["--box", "a,b,c,d"], "expected x0,y0,x1,y1"),
    ],
)
def test_bad_input_exits_2_with_one_line(fake: Fake, args: list[str], message: str) -> None:
    res = CliRunner().invoke(remote.remote_app, ["refine", "a1", "-p", "retina", *args], env=ENV)
    assert res.exit_code == 2 and message in res.output
    assert len(res.output.strip().splitlines()) == 1 and fake.calls == []


def test_volume_clicks_parse_and_a_changed_block_pastes_without_numpy_in_the_sdk(
    fake: Fake,
) -> None:
    import gzip

    import numpy as np

    from medloop.client import ChangedBlock

    args = ["refine", "a1", "-p", "retina", "--click", "12,20,9,1", "--click", "1,2,3,1,-"]
    res = CliRunner().invoke(remote.remote_app, [*args, "--box", "0,0,0,7,7,7"], env=ENV)
    assert res.exit_code == 0, res.output
    ((_, _, clicks, kw),) = fake.calls
    assert clicks == [
        Click(x=12, y=20, z=9, label=1),
        Click(x=1, y=2, z=3, label=1, positive=False),
    ]
    assert kw["box"] == [0.0] * 3 + [7.0] * 3
    bad = CliRunner().invoke(
        remote.remote_app, ["refine", "a1", "-p", "r", "--click", "1,2,3,4,5"], env=ENV
    )
    assert bad.exit_code == 2 and "x,y,z,label" in bad.output
    block = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = base64.b64encode(gzip.compress(block.tobytes())).decode()
    changed = ChangedBlock(offset=[1, 0, 2], shape=[2, 3, 4], data=data)
    volume = changed.apply(np.zeros((4, 4, 8), np.uint8))
    assert np.array_equal(volume[1:3, 0:3, 2:6], block) and volume.sum() == block.sum()
    assert np.array_equal(np.asarray(changed.view()), block)
    empty = ChangedBlock(
        offset=[0, 0, 0], shape=[0, 0, 0], data=base64.b64encode(gzip.compress(b"")).decode()
    )
    assert empty.apply(volume) is volume
    with pytest.raises(ValueError, match="empty"):
        empty.view()
