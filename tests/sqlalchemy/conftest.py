"""The databases of these tests: a SQLite file and a scratch PostgreSQL database."""

from tests.support.databases import database_url, postgres_server_url, postgres_url

__all__ = ["database_url", "postgres_server_url", "postgres_url"]
