"""A Sigma reports API simulator: the vendor's documented behaviour, quirks and injectable faults, and
(`replay.py`) a Sigma that answers with a `--record` recording. May import: `config/` (the walker, for
scenario files), `sigma/actions` (the action names it answers) and `sigma/recording` (the redaction mark)."""

from sigma_exporter.simulator.scenario import Faults, Scenario, load_scenario, parse_scenario
from sigma_exporter.simulator.server import Simulator

__all__ = ["Faults", "Scenario", "Simulator", "load_scenario", "parse_scenario"]
