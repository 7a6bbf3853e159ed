"""The shared state store for several replicas: PostgreSQL through psycopg 3. Every shard reads and writes
one database; a registration may arrive at any shard and reaches the shard that polls it through
`arrivals()`. The password is passed apart from the URL, so it is never part of a message."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sigma_exporter.config.secret import Secret
from sigma_exporter.runs.store.sql import SQLStore

CONNECT_TIMEOUT_SECONDS = 5
#: Any constant: the key of the advisory lock that serialises migrations between replicas.
MIGRATION_LOCK = 0x5167_6D61


class PostgresStore(SQLStore):
    """The state store in a PostgreSQL database shared by every shard."""

    def __init__(self, url: str, password: Secret | None) -> None:
        parts = urlsplit(url)
        shown = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1])  # no user in messages either
        super().__init__(urlunsplit(shown))
        self.url = url
        self._password = password

    def _connect(self) -> Any:
        import psycopg

        kwargs: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": "sigma-exporter",
        }
        if self._password is not None:
            kwargs["password"] = self._password.reveal()
        return psycopg.connect(self.url.replace("postgres://", "postgresql://", 1), **kwargs)

    def _errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _lock_for_migration(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
