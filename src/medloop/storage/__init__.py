"""Persistence: the database (SQLAlchemy + Alembic) and the content-addressed blob store.

Nothing is built at import time: make an engine from the settings' URL, migrate it,
and pass a session factory to whoever needs one::

    engine = make_engine(settings.db_url)
    migrate(engine)
    sessions = session_factory(engine)
    blobs = BlobStore(settings.data_dir / "blobs")
"""

from medloop.storage.blobs import BlobCorrupt, BlobRef, BlobStore, UploadTooLarge
from medloop.storage.db import is_sqlite, make_engine, migrate, session_factory

__all__ = [
    "BlobCorrupt",
    "BlobRef",
    "BlobStore",
    "UploadTooLarge",
    "is_sqlite",
    "make_engine",
    "migrate",
    "session_factory",
]
