"""The state store's schema, as numbered migrations. A database is brought up to the newest version when
the exporter opens it; one newer than this exporter knows is refused (downgrades are not guessed at)."""

from __future__ import annotations

from typing import Final

#: (version, statements). Types are the common ground of SQLite and PostgreSQL.
MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (
        1,
        (
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO meta (name, value) VALUES ('seq', 0)",
            """CREATE TABLE runs (
                reference TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                source TEXT NOT NULL,
                labels TEXT NOT NULL,
                report_id TEXT NOT NULL,
                report_group_id TEXT NOT NULL,
                submitted_at DOUBLE PRECISION,
                registered_at DOUBLE PRECISION NOT NULL,
                first_seen_at DOUBLE PRECISION,
                since TEXT NOT NULL,
                final_at DOUBLE PRECISION,
                outcome TEXT NOT NULL,
                report_name TEXT NOT NULL,
                seq BIGINT NOT NULL
            )""",
            "CREATE INDEX runs_by_seq ON runs (seq)",
            "CREATE TABLE tombstones (reference TEXT NOT NULL, seq BIGINT NOT NULL)",
            "CREATE INDEX tombstones_by_seq ON tombstones (seq)",
            """CREATE TABLE identities (
                report_group_id TEXT NOT NULL,
                report_id TEXT NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (report_group_id, report_id)
            )""",
        ),
    ),
    (
        2,
        (
            # Per schedule, the latest firing claimed (before its run is started): a firing is never
            # started twice, across restarts and replicas.
            "CREATE TABLE schedules (name TEXT PRIMARY KEY, fired_through DOUBLE PRECISION NOT NULL)",
        ),
    ),
    (
        3,
        (
            # Additive only: a shard still running schema 2 on a shared database keeps working (it names
            # its columns, and these have defaults) until it is restarted, when it refuses the newer schema.
            # When each run was last checked and how often re-checked since final: a restart derives each
            # run's next check from them instead of checking everything at once.
            "ALTER TABLE runs ADD COLUMN last_check_at DOUBLE PRECISION",
            "ALTER TABLE runs ADD COLUMN rechecks INTEGER NOT NULL DEFAULT 0",
            # Its reports and group counts as last seen (JSON), so that a restart shows them at once.
            "ALTER TABLE runs ADD COLUMN seen TEXT NOT NULL DEFAULT ''",
        ),
    ),
    (
        4,
        (
            # Additive only, as 3. Per identity its newest ended runs and judged expected times (the newest
            # 50 of each are kept), which outlive the runs' retention.
            """CREATE TABLE run_history (
                report_group_id TEXT NOT NULL,
                report_id TEXT NOT NULL,
                reference TEXT NOT NULL,
                final_at DOUBLE PRECISION NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (report_group_id, report_id, reference)
            )""",
            "CREATE INDEX run_history_by_time ON run_history (report_group_id, report_id, final_at)",
            """CREATE TABLE expected_history (
                report_group_id TEXT NOT NULL,
                report_id TEXT NOT NULL,
                expected_at DOUBLE PRECISION NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (report_group_id, report_id, expected_at)
            )""",
        ),
    ),
    (
        5,
        (
            # One writer per report identity. The identities move to a table of another name, so that a shard
            # of schema 4 still running on a migrated database fails loudly (its writes of whole identity
            # records name a table that is gone, and it reports sigma_state_up 0) instead of undoing the
            # owner's counts. Each row names its owner (a process's token) and an epoch, raised at each
            # change of owner: a write names both, so a process that lost the identity writes nothing. A row
            # without an owner is at epoch 1, and so is one a process created: taking one raises it to 2 or
            # more, so (this process, 1) is always a row this process made.
            """CREATE TABLE report_identities (
                report_group_id TEXT NOT NULL,
                report_id TEXT NOT NULL,
                record TEXT NOT NULL,
                owner TEXT,
                epoch BIGINT NOT NULL DEFAULT 1,
                PRIMARY KEY (report_group_id, report_id)
            )""",
            # A row several shards wrote before is taken as it stands: no shard knows more of it.
            "INSERT INTO report_identities (report_group_id, report_id, record) "
            "SELECT report_group_id, report_id, record FROM identities",
            "DROP TABLE identities",
            # The processes that own identities, each with the time its lease runs to (renewed every
            # second): an identity whose owner's lease ran out may be taken by the shard it hashes to.
            "CREATE TABLE owners (token TEXT PRIMARY KEY, lease_until DOUBLE PRECISION NOT NULL)",
            # Runs that ended at a shard other than their identity's owner, waiting for the owner to count
            # them: written in the transaction that marks the run counted, deleted in the owner's
            # transaction that counts it.
            """CREATE TABLE outcomes (
                report_group_id TEXT NOT NULL,
                report_id TEXT NOT NULL,
                reference TEXT NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (report_group_id, report_id, reference)
            )""",
            # The runs not yet final, by identity: skip_if_running and the owner's active runs ask it.
            "CREATE INDEX runs_active ON runs (report_group_id, report_id) WHERE outcome = ''",
        ),
    ),
)

LATEST: Final = MIGRATIONS[-1][0]
