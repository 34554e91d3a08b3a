"""DICOM settings at rest: secrets sealed together, URLs without credentials, allowed hosts."""

from __future__ import annotations

import json

import pytest

from medloop.domain.dicom import DicomSettings, DicomwebSettings, dicomweb_host_allowed
from medloop.errors import ConfigError
from medloop.storage.secret_keys import FernetBox, new_key

BOX = FernetBox([new_key()], "test")
RAW = {
    "dicomweb": {
        "url": "http://pacs:8042/dicom-web",
        "auth": {"kind": "basic", "username": "u", "password": "pw-123"},
    },
    "deidentify": {"enabled": True, "key": "ab" * 32},
}


def test_stored_settings_hold_no_secret_and_open_again() -> None:
    settings = DicomSettings.load(RAW, None)  # plain text, as earlier releases stored it
    assert DicomSettings.needs_sealing(RAW)
    stored = settings.stored(BOX)
    text = json.dumps(stored)
    assert (
        "pw-123" not in text and "ab" * 32 not in text and not DicomSettings.needs_sealing(stored)
    )
    again = DicomSettings.load(stored, BOX)
    assert again == settings
    without_box = DicomSettings.load(stored, None)
    assert without_box.dicomweb is not None and without_box.dicomweb.auth.password is None
    with pytest.raises(ConfigError, match="cannot be opened"):
        DicomSettings.load(stored, FernetBox([new_key()], "other"))


@pytest.mark.parametrize("url", ["http://u:p@pacs/x", "http://u@pacs/x", "https://:p@pacs"])
def test_credentials_in_the_url_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="credentials") as err:
        DicomwebSettings(url=url)
    assert ":p@" not in str(err.value).split("\n")[1]


def test_legacy_credentials_in_the_url_move_into_auth() -> None:
    raw = {"dicomweb": {"url": "http://medloop:pw@pacs:8042/dicom-web"}}
    assert DicomSettings.needs_sealing(raw)
    web = DicomSettings.load(raw, None).dicomweb
    assert web is not None and web.url == "http://pacs:8042/dicom-web"
    assert (web.auth.kind, web.auth.username, web.auth.password) == ("basic", "medloop", "pw")


@pytest.mark.parametrize(
    ("new_url", "kept"),
    [
        ("http://pacs:8042/other-path", True),
        ("http://pacs:8043/dicom-web", False),
        ("https://pacs:8042/dicom-web", False),
        ("http://evil:8042/dicom-web", False),
    ],
)
def test_a_password_stays_with_its_server(new_url: str, kept: bool) -> None:
    old = DicomSettings.load(RAW, None)
    new = DicomSettings.load(
        {"dicomweb": {"url": new_url, "auth": {"kind": "basic", "username": "u"}}}, None
    )
    merged = new.merged_secrets(old)
    assert merged.dicomweb is not None
    assert (merged.dicomweb.auth.password == "pw-123") is kept
    assert merged.deidentify.key == "ab" * 32  # the de-identification key never leaves


@pytest.mark.parametrize(
    ("url", "allowed", "ok"),
    [
        ("http://pacs:8042/x", ["pacs:8042"], True),
        ("http://pacs:8042/x", ["pacs"], True),
        ("http://PACS:8042/x", ["pacs:8042"], True),
        ("http://pacs/x", ["pacs:80"], True),
        ("http://pacs:8043/x", ["pacs:8042"], False),
        ("http://169.254.169.254/latest", ["pacs"], False),
        ("http://[::1]:8042/x", ["[::1]:8042"], True),
        ("http://anything/x", ["*"], True),
        ("http://pacs/x", [], False),
    ],
)
def test_allowed_hosts(url: str, allowed: list[str], ok: bool) -> None:
    assert dicomweb_host_allowed(url, allowed) is ok
