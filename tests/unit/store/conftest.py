from tests.support.db import database, postgres_shared_url, postgres_url, sqlite_url

__all__ = ["database", "postgres_shared_url", "postgres_url", "sqlite_url"]
