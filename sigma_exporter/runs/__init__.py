"""Stage 2, the runs the exporter holds: inline references of the config and reference files (re-read when
they change, `references.py`), registrations from the API (`registry.py`), the vocabularies of outcomes
and retirements (`outcomes.py`), per report identity history (`identities.py`) and the durable state store
(`store/`). Filtered to this process's shard. May import: `config/`, `sigma/` (status vocabulary)."""
