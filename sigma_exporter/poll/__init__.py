"""Stage 5, polling: decide when to check and check. The poller (`poller.py`) runs a cycle as select
(`select.py`, pure) -> check (`check.py`, on the bounded workers of `workers.py`) -> account (to the
holdings of `runs/`, and the due times of `due.py`) -> publish (`publish.py`, pure, into `metrics/`); the
loop (`loop.py`) runs cycles on the poll thread, sleeping as long as `waiting.py` says; reloads reach it
through `inbox.py`. The only writer of snapshots. May import: `config/`, `sigma/`, `runs/`, `metrics/`."""
