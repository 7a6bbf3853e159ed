"""A report's history over SQL (tables run_history and expected_history, schema 4): its rows written in one
batch, trimmed to the newest HISTORY_LENGTH now and then, read newest first. Used inside the SQL store's
transactions, so by one thread at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sigma_exporter.runs.store.jsonforms import (
    expected_run_json,
    expected_run_of,
    history_run_json,
    history_run_of,
)
from sigma_exporter.runs.store.records import HISTORY_LENGTH, ExpectedRun, HistoryRun

_UPSERT_HISTORY = (
    "INSERT INTO run_history (report_group_id, report_id, reference, final_at, record) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (report_group_id, report_id, reference) DO UPDATE SET final_at = excluded.final_at, "
    "record = excluded.record"
)
_UPSERT_EXPECTED = (
    "INSERT INTO expected_history (report_group_id, report_id, expected_at, record) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (report_group_id, report_id, expected_at) DO UPDATE SET record = excluded.record"
)
#: An identity's history is trimmed to its newest HISTORY_LENGTH once this many rows were added to it.
PRUNE_EVERY = 10
# Keep the newest HISTORY_LENGTH of an identity: delete what is older than the one at that place.
_PRUNE_HISTORY = (
    "DELETE FROM run_history WHERE report_group_id = ? AND report_id = ? AND final_at < ("
    "SELECT final_at FROM run_history WHERE report_group_id = ? AND report_id = ? "
    "ORDER BY final_at DESC LIMIT 1 OFFSET ?)"
)
_PRUNE_EXPECTED = (
    "DELETE FROM expected_history WHERE report_group_id = ? AND report_id = ? AND expected_at < ("
    "SELECT expected_at FROM expected_history WHERE report_group_id = ? AND report_id = ? "
    "ORDER BY expected_at DESC LIMIT 1 OFFSET ?)"
)
_SELECT_HISTORY = (
    "SELECT reference, record FROM run_history WHERE report_group_id = ? AND report_id = ? "
    "ORDER BY final_at DESC, reference LIMIT ?"
)
_SELECT_EXPECTED = (
    "SELECT expected_at, record FROM expected_history WHERE report_group_id = ? AND report_id = ? "
    "ORDER BY expected_at DESC LIMIT ?"
)


class HistoryTables:
    """The history's statements on a cursor of the SQL store (`sql` turns `?` into the dialect's
    placeholder). Not thread-safe: the store's transaction lock serialises it."""

    def __init__(self) -> None:
        self._unpruned: dict[tuple[str, str, str], int] = {}  # rows added per (table, identity) since a trim

    def write(
        self, cur: Any, sql: Callable[[str], str], runs: Sequence[HistoryRun], expected: Sequence[ExpectedRun]
    ) -> None:
        """Insert the history rows in one batch, and trim an identity to its newest HISTORY_LENGTH when this
        connection first writes to it and then every PRUNE_EVERY rows (reads take the newest only)."""
        if runs:
            rows = [
                (r.report_group_id, r.report_id, r.reference, r.final_at, history_run_json(r)) for r in runs
            ]
            cur.executemany(sql(_UPSERT_HISTORY), rows)
        if expected:
            items = [(e.report_group_id, e.report_id, e.expected_at, expected_run_json(e)) for e in expected]
            cur.executemany(sql(_UPSERT_EXPECTED), items)
        for table, prune, keys in (
            ("runs", _PRUNE_HISTORY, [r.key[:2] for r in runs]),
            ("expected", _PRUNE_EXPECTED, [e.key[:2] for e in expected]),
        ):
            for group, report in self._due(table, keys):
                cur.execute(sql(prune), (group, report, group, report, HISTORY_LENGTH - 1))

    def _due(self, table: str, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        due = set()
        for group, report in keys:
            count = self._unpruned.get((table, group, report))
            if count is None or count + 1 >= PRUNE_EVERY:
                due.add((group, report))
            self._unpruned[(table, group, report)] = (count or 0) + 1
        for group, report in due:
            self._unpruned[(table, group, report)] = 0
        return due

    def read(
        self, cur: Any, sql: Callable[[str], str], key: tuple[str, str]
    ) -> tuple[tuple[HistoryRun, ...], tuple[ExpectedRun, ...]]:
        """An identity's newest HISTORY_LENGTH runs and judged expected times, newest first."""
        cur.execute(sql(_SELECT_HISTORY), (*key, HISTORY_LENGTH))
        runs = tuple(history_run_of(*key, ref, text) for ref, text in cur.fetchall())
        cur.execute(sql(_SELECT_EXPECTED), (*key, HISTORY_LENGTH))
        expected = tuple(expected_run_of(*key, at, text) for at, text in cur.fetchall())
        return runs, expected
