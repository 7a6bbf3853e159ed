"""Helpers shared by the tests, each defined once (benchmarks/ may import them; tests never import benchmarks/).

- `paths`: the checkout's root and the tests' data directories (golden/, recorded/, out/).
- `net`: `free_port`, `wait_for` (a bounded wait).
- `binaries`: `require_binary`, `IN_CI`.
- `scenarios`: the simulator's sample credentials and the scenarios tests share.
- `configs`: `config_text` (an exporter's config for a simulator) and a document with every key.
- `process`: `sigma-exporter` as a child process (`ExporterProcess`) or one command's run (`run_command`),
  and `stop_child`.
- `prometheus`: the real Prometheus as a child process (`PrometheusProcess`): queries and exemplars.
- `exporter`: an in-process poller against a simulator, and reading an exposition (samples, select, normalise).
- `runs`: the run-registration scenario (API token, /generate definitions) of the runs tests.
- `postgres`: a throwaway PostgreSQL cluster. `pki`: a test certificate authority. `webconfig`: web.yml bits.
- `chart`: the Helm chart rendered offline. `dashboard_queries`: the dashboards' PromQL, variables filled in.
- `recorded`: `--record` directories as parser cases. `exposition`: random snapshots and the round trip.
- `faults`: the fault suite's scraper. `fuzz`: hypothesis settings and strategies of outside input.

Fixtures live in tests/conftest.py; these modules define none.
"""
