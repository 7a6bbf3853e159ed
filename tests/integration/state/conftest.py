"""The stores the state tests open: a real SQLite file and a real PostgreSQL database (a throwaway cluster)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sigma_exporter.config.model import StateConfig
from sigma_exporter.config.secret import Secret
from sigma_exporter.runs.store import StateStore, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], StateStore]]:
    """Opens stores on one database: each call is a new connection (a restart, or another replica)."""
    opened: list[StateStore] = []
    if request.param == "sqlite":
        config = StateConfig(url=f"sqlite:///{tmp_path}/state.db", explicit=True)
    else:
        from tests.support.postgres import PASSWORD

        cluster = request.getfixturevalue("postgres_cluster")
        config = StateConfig(url=cluster.create_database(), password=Secret(PASSWORD), explicit=True)

    def make() -> StateStore:
        store = open_store(config)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
