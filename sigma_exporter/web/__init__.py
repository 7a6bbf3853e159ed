"""Stage 6, the HTTP surface: the aiohttp server and its limits (`server.py`), the endpoints and the
middleware (`routes.py`), the run registry API (`api/`), the server's counters (`stats.py`), the status
page (pure) and `webconfig/` (TLS, basic auth, headers, hot reload). Scrapes only pick pre-rendered bytes.
May import: `config/`, `runs/` (the registry and its vocabularies), `metrics/`; never `poll/` or `sigma/`
(reloads come in as a callable from `app.py`)."""
