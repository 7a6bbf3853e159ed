"""Stage 4, what a scrape reads: immutable snapshots, the collector (snapshot -> metric families, pure),
the exposition rendered once per snapshot in both formats, and the store that swaps it atomically.
Report identity and registry families are in `identities.py`. May import: `config/`, `sigma/` (vocabularies
and call statistics), `runs/` (records and vocabularies)."""
