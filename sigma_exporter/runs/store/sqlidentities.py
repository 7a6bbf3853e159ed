"""Report identities over SQL (schema 5): one writer per identity. A row names its owner (a process's
token, whose lease in `owners` it renews every second) and an epoch raised at each change of owner; a write
names both, so a process that lost an identity writes nothing to it. Outcomes of runs that ended at another
shard wait in `outcomes` until the owner counts them, in the transaction that writes the identity. Used
inside the SQL store's transactions, so by one thread at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sigma_exporter.runs.store.jsonforms import handoff_json, handoff_of, identity_json, identity_of
from sigma_exporter.runs.store.records import Changes, Handoff, IdentityKey, IdentityRecord, WriteResult

Sql = Callable[[str], str]

# Free: no owner, an owner whose lease ran out, or this process's predecessor (the same shard on the same
# host, before a restart: its owner token begins with the same prefix).
_IS_FREE = (
    "(owner IS NULL OR owner NOT IN (SELECT token FROM owners WHERE lease_until >= ?) "
    "OR (owner <> ? AND substr(owner, 1, ?) = ?))"
)
_FREE = f"SELECT report_group_id, report_id FROM report_identities WHERE {_IS_FREE}"  # noqa: S608
_ACQUIRE = (
    "UPDATE report_identities SET owner = ?, epoch = epoch + 1 "  # noqa: S608 - constant text
    f"WHERE report_group_id = ? AND report_id = ? AND {_IS_FREE} RETURNING record, epoch"
)
_UPDATE = (
    "UPDATE report_identities SET record = ? WHERE report_group_id = ? AND report_id = ? AND owner = ? "
    "AND epoch = ?"
)
# A row a registration reserved holds nothing yet: the process that makes the identity takes it as its own.
_CLAIM_RESERVED = (
    "UPDATE report_identities SET record = ?, owner = ? WHERE report_group_id = ? AND report_id = ? "
    "AND owner IS NULL AND epoch = 1 AND record = '{}'"
)
_EXISTS = "SELECT 1 FROM report_identities WHERE report_group_id = ? AND report_id = ?"
_INSERT = (
    "INSERT INTO report_identities (report_group_id, report_id, record, owner, epoch) VALUES (?, ?, ?, ?, 1) "
    "ON CONFLICT (report_group_id, report_id) DO NOTHING"
)
_RESERVE = "INSERT INTO report_identities (report_group_id, report_id, record, owner, epoch) VALUES (?, ?, '{}', NULL, 1)"
_INSERT_OUTCOME = (
    "INSERT INTO outcomes (report_group_id, report_id, reference, record) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (report_group_id, report_id, reference) DO NOTHING"
)
_DELETE_OUTCOME = "DELETE FROM outcomes WHERE report_group_id = ? AND report_id = ? AND reference = ?"
_DROP = (
    "DELETE FROM report_identities WHERE report_group_id = ? AND report_id = ? AND owner = ? AND epoch = ?"
)
_DROP_HISTORY = (
    "DELETE FROM run_history WHERE report_group_id = ? AND report_id = ?",
    "DELETE FROM expected_history WHERE report_group_id = ? AND report_id = ?",
)
_LOCK_CREATION = "UPDATE meta SET value = value WHERE name = 'seq'"  # the lock registrations take too


class IdentityTables:
    """The identities' statements on a cursor of the SQL store. Stateless."""

    def write(self, cur: Any, sql: Sql, changes: Changes, token: str) -> tuple[WriteResult, set[IdentityKey]]:
        """Write the identity records this process owns (each under its epoch), create the new ones within
        `max_identities`, store the hand-offs no record here counts, delete the outcomes counted. Returns
        what was lost or refused, and the identities written (their history goes with them)."""
        epochs = dict(changes.epochs)
        written: set[IdentityKey] = set()
        lost: list[tuple[IdentityKey, int]] = []
        refused: list[IdentityKey] = []
        created: list[IdentityKey] = []
        for key, epoch in changes.dropped:  # first: an identity retired and made again comes back new
            cur.execute(sql(_DROP), (*key, token, epoch or 1))
            if cur.rowcount == 1:
                for statement in _DROP_HISTORY:
                    cur.execute(sql(statement), key)
        locked = False
        for record in changes.identities:
            key = record.key
            epoch = epochs.get(key, 0)  # 0: created by this process, stored at epoch 1 (no one else's is)
            cur.execute(sql(_UPDATE), (identity_json(record), *key, token, epoch or 1))
            if cur.rowcount == 1:
                written.add(key)
                if epoch == 0:
                    created.append(key)  # made by this process (or reserved by its registration) before
                continue
            if epoch == 0:
                cur.execute(sql(_CLAIM_RESERVED), (identity_json(record), token, *key))
                if cur.rowcount == 1:
                    written.add(key)
                    created.append(key)
                    continue
            cur.execute(sql(_EXISTS), key)
            if epoch != 0 or cur.fetchone() is not None:
                lost.append((key, epoch))  # never written over: its runs go to the outcomes
                continue
            if changes.max_identities and not locked:
                cur.execute(sql(_LOCK_CREATION))  # creations across shards one at a time: the limit holds
                locked = True
            if changes.max_identities and count(cur, sql) >= changes.max_identities:
                refused.append(key)
                continue
            cur.execute(sql(_INSERT), (*key, identity_json(record), token))
            if cur.rowcount == 1:
                written.add(key)
                created.append(key)
            else:
                lost.append((key, epoch))  # another process made it a moment ago
        gone = set(refused)
        stored = [h for h in changes.handoffs if h.identity not in written and h.identity not in gone]
        if stored:
            cur.executemany(sql(_INSERT_OUTCOME), [(*h.key, handoff_json(h)) for h in stored])
        consumed = [k for k in changes.consumed if k[:2] in written or k[:2] in gone]
        if consumed:
            cur.executemany(sql(_DELETE_OUTCOME), consumed)
        return WriteResult(tuple(lost), tuple(refused), tuple(created)), written

    def renew(self, cur: Any, sql: Sql, token: str, until: float) -> None:
        """This process's lease runs to `until`."""
        cur.execute(
            sql(
                "INSERT INTO owners (token, lease_until) VALUES (?, ?) ON CONFLICT (token) DO UPDATE "
                "SET lease_until = excluded.lease_until"
            ),
            (token, until),
        )

    def release(self, cur: Any, sql: Sql, token: str) -> None:
        """This process owns nothing any more: its identities are free for their shards at once."""
        cur.execute(sql("UPDATE report_identities SET owner = NULL WHERE owner = ?"), (token,))
        cur.execute(sql("DELETE FROM owners WHERE token = ?"), (token,))

    def free(self, cur: Any, sql: Sql, token: str, now: float, takeover: bool) -> list[IdentityKey]:
        """The identities no live process owns (and with `takeover`, those of this process's predecessor)."""
        cur.execute(sql(_FREE), (now, *_predecessor(token, takeover)))
        return [(str(g), str(r)) for g, r in cur.fetchall()]

    def mine(self, cur: Any, sql: Sql, token: str) -> dict[IdentityKey, int]:
        """The identities `token` owns, with their epochs."""
        cur.execute(
            sql("SELECT report_group_id, report_id, epoch FROM report_identities WHERE owner = ?"), (token,)
        )
        return {(str(g), str(r)): int(e) for g, r, e in cur.fetchall()}

    def acquire(
        self, cur: Any, sql: Sql, token: str, keys: Sequence[IdentityKey], now: float, takeover: bool
    ) -> list[tuple[IdentityRecord, int, tuple[str, ...]]]:
        """Take the identities of `keys` no live process owns: each with its record, its new epoch and the
        references its history holds (a run counted once is not counted again)."""
        taken: list[tuple[IdentityRecord, int, tuple[str, ...]]] = []
        for key in keys:
            cur.execute(sql(_ACQUIRE), (token, *key, now, *_predecessor(token, takeover)))
            row = cur.fetchone()
            if row is None:
                continue
            cur.execute(
                sql("SELECT reference FROM run_history WHERE report_group_id = ? AND report_id = ?"), key
            )
            references = tuple(str(r[0]) for r in cur.fetchall())
            taken.append((identity_of(*key, row[0]), int(row[1]), references))
        return taken

    def outcomes(self, cur: Any, sql: Sql) -> list[Handoff]:
        """Every outcome waiting for its owner."""
        cur.execute(sql("SELECT report_group_id, report_id, reference, record FROM outcomes"))
        return [handoff_of(g, r, ref, text) for g, r, ref, text in cur.fetchall()]

    def reserve(self, cur: Any, sql: Sql, key: IdentityKey, limit: int) -> bool:
        """Make sure identity `key` is held, within `limit` identities in all (0: no limit): a new one
        without an owner, for its shard to take (and so to export and, once idle, retire). False when it is
        new beyond the limit. The caller holds the registrations' lock."""
        cur.execute(sql(_EXISTS), key)
        if cur.fetchone() is not None:
            return True
        if limit and count(cur, sql) >= limit:
            return False
        cur.execute(sql(_RESERVE), key)
        return True

    def read_all(self, cur: Any, sql: Sql) -> tuple[IdentityRecord, ...]:
        """Every identity held, sorted."""
        cur.execute(
            sql(
                "SELECT report_group_id, report_id, record FROM report_identities "
                "ORDER BY report_group_id, report_id"
            )
        )
        return tuple(identity_of(g, r, text) for g, r, text in cur.fetchall())

    def read_one(self, cur: Any, sql: Sql, key: IdentityKey) -> IdentityRecord | None:
        """One identity's record, None when it is not held."""
        cur.execute(
            sql("SELECT record FROM report_identities WHERE report_group_id = ? AND report_id = ?"), key
        )
        row = cur.fetchone()
        return None if row is None else identity_of(*key, row[0])


def _predecessor(token: str, takeover: bool) -> tuple[str, int, str]:
    """The parameters of `_IS_FREE` that name this process's predecessor (the same host and shard, before the
    first colon of the token), or with `takeover` false none."""
    prefix = token.split(":", 1)[0] + ":" if takeover else token + "#"  # no token begins with the latter
    return (token, len(prefix), prefix)


def count(cur: Any, sql: Sql) -> int:
    """How many identities are held, across shards."""
    cur.execute(sql("SELECT count(*) FROM report_identities"))
    return int(cur.fetchone()[0])
