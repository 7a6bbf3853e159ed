"""`sigma-exporter run-report`: what a scheduler's job (Control-M, cron, Airflow) calls instead of the
vendor's sample script: start one run through Sigma, print its reference, register it with an exporter
(`register.py`) and follow it to a final status (`job.py`, with the exit codes). May import: `config/`,
`sigma/`, `runs/` (the outcome vocabulary)."""
