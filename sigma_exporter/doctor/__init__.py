"""`sigma-exporter doctor`: meet a real Sigma with the user's own config, one step at a time, and say for each
step ok, warning or failed and what to do (`connect.py`: DNS, TCP, TLS; `examine.py`: token, parameters,
references and their quirks, latency, one run; `findings.py`: the findings and their text, pure). The text
is redacted of every configured secret and of the access tokens Sigma hands out. May import: `config/`,
`sigma/`."""
