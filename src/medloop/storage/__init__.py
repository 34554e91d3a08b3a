"""Persistence: the database (SQLAlchemy + Alembic) and the content-addressed blob store.

Nothing is built at import time: open a :class:`Database` from the settings' URL (it
migrates) and a :class:`BlobStore` on the data folder, and pass them to whoever needs
them::

    db = Database.open(settings.db_url, data_dir=settings.data_dir)
    blobs = BlobStore(settings.data_dir / "blobs")
    store = DbArtifactStore(db, blobs, project_id)     # the engine's ArtifactStore port
"""

from medloop.errors import BlobCorrupt, UploadTooLarge
from medloop.storage.artifacts import DbArtifactStore
from medloop.storage.blobs import BlobRef, BlobStore
from medloop.storage.database import Database
from medloop.storage.db import is_sqlite, make_engine, migrate, session_factory

__all__ = [
    "BlobCorrupt",
    "BlobRef",
    "BlobStore",
    "Database",
    "DbArtifactStore",
    "UploadTooLarge",
    "is_sqlite",
    "make_engine",
    "migrate",
    "session_factory",
]
