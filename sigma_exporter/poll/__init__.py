"""Stage 3, the poll loop: the only writer of snapshots. It checks the due runs with bounded workers,
never runs past its interval, takes queued reloads on its own thread and publishes one immutable snapshot
per cycle. May import: `config/`, `sigma/`, `runs/`, `metrics/` (snapshot and store)."""
