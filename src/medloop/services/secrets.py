"""Secrets at rest: sealing what earlier releases stored in plain text, and key rotation.

The server's keys (:class:`~medloop.storage.secret_keys.ServerKeys`) live outside the
database; every secret in it is sealed with them (see :mod:`medloop.domain.dicom`).
"""

from __future__ import annotations

from dataclasses import dataclass

from medloop.domain.dicom import DicomSettings
from medloop.errors import ConfigError
from medloop.storage import repo_dicom
from medloop.storage.database import Database
from medloop.storage.secret_keys import FernetBox, ServerKeys, new_key

__all__ = ["Rotation", "Secrets"]


@dataclass(frozen=True)
class Rotation:
    """What a key rotation did: projects whose secrets were sealed again, and where the key is."""

    projects: int
    where: str
    keys_left: int


class Secrets:
    """The stored secrets of every project, as a whole.

    Args:
        db: the database.
        keys: the server's keys.
    """

    def __init__(self, db: Database, keys: ServerKeys) -> None:
        self.db, self.keys = db, keys
        self.box = keys.box

    def check_and_seal(self) -> int:
        """Check that every stored secret opens with the server's keys, and seal those that
        earlier releases stored in plain text (or in a DICOMweb URL); returns how many
        projects were sealed now.

        Raises:
            ConfigError: a secret that does not open (the key file was replaced or lost):
                the server must not start and overwrite it.
        """
        with self.db.write() as s:
            stored = repo_dicom.all_dicom_settings(s, for_update=True)
            changed = 0
            for project_id, raw in stored.items():
                settings = DicomSettings.load(raw, self.box)  # raises if it does not open
                if DicomSettings.needs_sealing(raw):
                    repo_dicom.set_dicom_settings(s, project_id, settings.stored(self.box))
                    changed += 1
        return changed

    def _reseal(self, box: FernetBox) -> int:
        with self.db.write() as s:
            stored = repo_dicom.all_dicom_settings(s, for_update=True)
            for project_id, raw in stored.items():
                settings = DicomSettings.load(raw, box)
                repo_dicom.set_dicom_settings(s, project_id, settings.stored(box))
        return len(stored)

    def rotate(self) -> Rotation:
        """Seal every stored secret with a new key and retire the old ones.

        With a key file: a new key is added first, everything is sealed again with it in
        one transaction, then the old keys are dropped; a crash at any point leaves keys
        that open everything, and running ``rotate`` again finishes the job. With
        ``MEDLOOP_SECRET_KEY``: everything is sealed with its first key; the caller then
        removes the others from the variable.

        Raises:
            ConfigError: ``MEDLOOP_SECRET_KEY`` holds a single key (nothing to rotate to).
        """
        if self.keys.file is None:
            if len(self.keys.keys) < 2:
                raise ConfigError(
                    "MEDLOOP_SECRET_KEY holds one key: set it to NEW,OLD (`medloop secrets "
                    "new-key` prints a new one), run rotate, then set it to NEW"
                )
            count = self._reseal(self.keys.box)
            return Rotation(count, self.keys.where, len(self.keys.keys))
        staged = self.keys.write([new_key(), *self.keys.keys])
        count = self._reseal(staged.box)
        self.keys = staged.write(staged.keys[:1])
        self.box = self.keys.box
        return Rotation(count, self.keys.where, 1)
