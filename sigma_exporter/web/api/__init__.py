"""`/api/v1`: the run registry over HTTP (register, list, show, delete) and its OpenAPI document. Bodies
are parsed by pure functions (`parse.py`), runs shown by pure views (`views.py`). May import: `config/`,
`runs/` (the registry), `metrics/` (the published snapshot)."""
