from tests.unit.storage.dbfixtures import database, db_url, engine, project_id, sessions

__all__ = ["database", "db_url", "engine", "project_id", "sessions"]
