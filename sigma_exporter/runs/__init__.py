"""Stage 3, the runs the exporter holds (the registry): where runs come from (config and reference files,
`references.py`; the API, `registry.py`; schedules, `schedules.py`), what is held of each and the
bookkeeping of the identities they feed (`holdings.py`, with `held.py`, `fold.py`, `accounting.py`,
`identities.py`), the identities this shard owns and alone writes (`ownership.py` keeps them in the store
on a thread of its own, `owned.py` takes its news on the poll thread), expectations (`expectations.py`,
`timetable.py`), the wall clock of runs and its steps (`clock.py`), the vocabularies of outcomes and
retirements (`outcomes.py`), and the durable state store (`store/`). Filtered to this process's shard. May import: `config/`, `sigma/` (replies, errors and the
status vocabulary)."""
