"""The vendor API: the client (transport, tokens; `pool.py` its connection pool and CA bundle), pure reply
parsing and quirk detection, typed errors (each with its metric `reason`), API call statistics, and
`recording.py` (exchanges as redacted fixture files for --record). May import: `config/`."""
