"""Stage 2, the runs the exporter holds: inline references of the config and reference files (re-read when
they change), filtered to this process's shard. May import: `config/`."""
