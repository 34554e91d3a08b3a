"""DICOM settings (secrets never shown) and the sync scheduler's backoff."""

from __future__ import annotations

import pytest

from medloop.domain.dicom import DicomSettings
from medloop.errors import ConfigError
from medloop.jobs.scheduler import MAX_BACKOFF_S, next_delay
from medloop.services.dicom_sync import backoff


def test_public_settings_hide_secrets_and_keep_them_on_update() -> None:
    old = DicomSettings.load(
        {
            "dicomweb": {
                "url": "http://pacs.local:8042/dicom-web/",
                "auth": {"kind": "basic", "username": "u", "password": "p"},
            },
            "deidentify": {"enabled": True, "key": "k"},
        },
        None,
    )
    assert old.dicomweb is not None and old.dicomweb.url == "http://pacs.local:8042/dicom-web"
    public = old.public()
    assert public["dicomweb"]["auth"] == {
        "kind": "basic",
        "username": "u",
        "has_password": True,
        "has_token": False,
    }
    assert "key" not in public["deidentify"]
    new = DicomSettings.load(
        {
            "dicomweb": {
                "url": "http://pacs.local:8042/dicom-web",
                "auth": {"kind": "basic", "username": "u"},
            }
        },
        None,
    )
    merged = new.merged_secrets(old)
    assert merged.dicomweb is not None and merged.dicomweb.auth.password == "p"
    assert merged.deidentify.key == "k"
    assert DicomSettings().with_key().deidentify.key


@pytest.mark.parametrize(
    "raw",
    [
        {"dicomweb": {"url": "ftp://pacs"}},
        {"dicomweb": {"url": "http://pacs", "poll_interval_s": 0}},
        {"dicomweb": {"url": "http://pacs", "surprise": 1}},
        {"other": 1},
    ],
)
def test_invalid_settings(raw: dict) -> None:
    with pytest.raises(ConfigError, match="invalid DICOM settings"):
        DicomSettings.load(raw, None)


def test_backoffs_grow_and_are_capped() -> None:
    assert [next_delay(60, n) for n in range(4)] == [60, 120, 240, 480]
    assert next_delay(60, 40) == MAX_BACKOFF_S
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(50).total_seconds() == 3600
