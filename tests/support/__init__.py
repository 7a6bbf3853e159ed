"""Helpers shared by the tests (and by benchmarks/, which may import them; tests never import benchmarks/).

- `paths`: the checkout's root and the tests' data directories.
- `net`: `free_port`, `wait_for` (a bounded wait).
- `binaries`: `require_binary`, `IN_CI`.
- `scenarios`: the simulator's sample credentials and scenarios.
- `exporter`: `sigma-exporter` as a child process, configs, an in-process poller, reading expositions.
- `runs`: the run-registration scenario (API token, /generate definitions) shared by the runs tests.
- `postgres`: a throwaway PostgreSQL cluster.
- `pki`: a test certificate authority.
- `chart`: rendering the Helm chart.
- `recorded`, `dashboard_queries`, `exposition`, `fuzz`: parser cases, dashboard queries, random snapshots,
  hypothesis strategies.

Fixtures live in tests/conftest.py; these modules define none.
"""
