"""Stage 4, what a scrape reads: immutable snapshots (`snapshot.py`), the collector (snapshot -> metric
families, pure: `collector.py` per run, `identities.py` per report identity and registry, both on the line
builders of `families.py`), the exposition rendered once per snapshot in both formats (`exposition.py`)
and the latest snapshot, swapped atomically (`latest.py`). May import: `config/`, `sigma/` (vocabularies
and call statistics), `runs/` (records, rows and vocabularies)."""
