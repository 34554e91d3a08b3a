from tests.unit.storage.dbfixtures import db_url, engine, project_id, sessions

__all__ = ["db_url", "engine", "project_id", "sessions"]
