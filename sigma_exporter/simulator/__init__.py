"""A tool beside the stages: a Sigma reports API simulator with the vendor's documented behaviour, quirks
and injectable faults (`scenario.py`, `state.py`, `handler.py`, `faults.py`, run by `server.py`), a Sigma
that answers with a `--record` recording (`replay.py`), and the demo's words (`demo.py`). May import:
`config/` (the walker, for scenario files) and `sigma/`'s vocabularies only (`actions`, `replies` for the
statuses, `recording` for the redaction mark), never its client."""

from sigma_exporter.simulator.scenario import Faults, Scenario, load_scenario, parse_scenario
from sigma_exporter.simulator.server import Simulator

__all__ = ["Faults", "Scenario", "Simulator", "load_scenario", "parse_scenario"]
