"""Model versions by hand: overruling the gate needs a reason, and the event keeps it;
a download holds the version as a registry folder would."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from medloop.errors import ConfigError
from medloop.services.model_versions import ModelVersions
from medloop.storage import BlobStore, Database

from ...artifact_store_contract import ACCEPT, REJECT, add


def test_a_rejected_version_is_promoted_only_with_a_reason(
    database: Database, project_id: str, tmp_path: Path
) -> None:
    versions = ModelVersions(database, BlobStore(tmp_path / "blobs"))
    store = versions.store(project_id)
    a, b = add(store, b"a"), add(store, b"b")
    store.record_verdict(a, ACCEPT, {"accepted": True})
    store.record_verdict(b, REJECT, {"accepted": False, "reasons": ["worse"]})
    with pytest.raises(ConfigError, match="rejected by the gate"):
        versions.promote(project_id, b, "alice")
    assert versions.promote(project_id, b, "alice", "the gate saw 3 images").record.name == b
    last = store.events()[-1]
    assert last["event"] == "promoted" and last["actor"] == "alice"
    assert "over the gate's rejection: the gate saw 3 images" in last["reason"]
    assert versions.rollback(project_id, "alice").record.name == a

    archive = zipfile.ZipFile(io.BytesIO(versions.download(project_id, b)))
    assert sorted(archive.namelist()) == [
        f"{b}/{f}"
        for f in ("lineage.json", "manifest.json", "metrics.json", "report.json", "weights.pt")
    ]
    assert archive.read(f"{b}/weights.pt") == b"b"
    assert json.loads(archive.read(f"{b}/report.json"))["accepted"] is False
