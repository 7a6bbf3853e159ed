"""Stage 2, the vendor API: the client (transport, tokens; `pool.py` its connection pool and CA bundle,
`link.py` the client in force across reloads), pure reply parsing and quirk detection, typed errors (each
with its metric `reason`), API call statistics, and `recording.py` (exchanges as redacted fixture files
for --record). May import: `config/`."""
