"""The vendor API: the client (transport, tokens), pure reply parsing, typed errors (each with its metric
`reason`) and API call statistics. May import: `config/`."""
