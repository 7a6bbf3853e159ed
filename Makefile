# Two commands for a newcomer: `make demo` and `make test`. Everything else is a helper of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist for the whole suite: two workers, each test file kept on one worker (its module fixtures, such
# as e2e's Prometheus and Alertmanager, start once). On 2 CPUs it halves `make test`'s pytest run (622 s ->
# 325 s). `make test XDIST=` runs in one process; `XDIST="-n auto"` uses every CPU.
XDIST ?= -n 2 --dist loadfile

.PHONY: demo test lint unit integration deploy fuzz bench system-deps sync-assets clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sigma-exporter demo

# Debian's prometheus (promtool), alertmanager and postgresql (a throwaway cluster per test session), and
# podman with runc, catatonit (the pods' pause process) and mmdebstrap (the image's local base), when we are
# root with apt-get; otherwise the tests that need them skip with a reason (and fail under CI=true).
SYSTEM_PACKAGES := prometheus prometheus-alertmanager postgresql podman runc catatonit mmdebstrap
system-deps:
	@if command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null \
	    && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v podman >/dev/null \
	    && command -v runc >/dev/null && command -v catatonit >/dev/null && command -v mmdebstrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages $(SYSTEM_PACKAGES)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	     $(SYSTEM_PACKAGES) >/dev/null) || echo "warning: apt-get install failed"; \
	else echo "note: some of $(SYSTEM_PACKAGES) missing and not root: their tests will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --python-version 3.11 grafana
	$(BIN)/lint-imports
	$(BIN)/python grafana/generate.py --check
	bash helm/sync-assets.sh --check

# After changing prometheus/alerts.yml or the dashboards: regenerate and copy them into the chart.
sync-assets: $(STAMP)
	$(BIN)/python grafana/generate.py
	bash helm/sync-assets.sh

# The tests by stage (tests/README.md): unit is pure and fast (no process, no network, no database; under a
# minute), integration runs processes on loopback with SQLite, PostgreSQL, Prometheus and Alertmanager, deploy
# checks the chart, the Dockerfile, the dashboards and the alert rules. PYTEST_ARGS go to every run.
unit: $(STAMP)
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/pytest -q $(XDIST) tests/integration $(PYTEST_ARGS)

deploy: $(STAMP)
	$(BIN)/pytest -q tests/deploy $(PYTEST_ARGS)

# Everything: system packages, lint, then every test (unit, integration and deploy) in one pytest run.
test: $(STAMP) system-deps lint
	$(BIN)/pytest -q $(XDIST) $(PYTEST_ARGS)

fuzz: $(STAMP)
	SIGMA_FUZZ_EXAMPLES=10000 $(BIN)/pytest -q tests/unit/sigma/test_fuzz_replies.py tests/unit/config/test_fuzz_config.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
