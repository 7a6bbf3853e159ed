"""`sigma-exporter demo`: the simulator and the exporter together on loopback, lively."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import click
import requests

from sigma_exporter.cli.logsetup import Redactor, setup_logging
from sigma_exporter.cli.options import load_or_fail, option, with_logging
from sigma_exporter.cli.serve import serve_until_stopped
from sigma_exporter.config.model import Config
from sigma_exporter.parts import running
from sigma_exporter.sigma.client import SigmaClient
from sigma_exporter.sigma.errors import SigmaError
from sigma_exporter.sigma.stats import ApiStats
from sigma_exporter.simulator.demo import DEMO_API_TOKEN, demo_banner, registration_curl, write_demo_config


@click.command()
@option("--web.listen-address", "listen", default="127.0.0.1:9842", help="Where the exporter serves.")
@with_logging
def demo(listen: str, log_level: str, log_format: str) -> None:
    """Run the simulator and the exporter together on loopback, with a lively built-in scenario."""
    from sigma_exporter.simulator import Simulator, load_scenario
    from sigma_exporter.simulator.scenario import builtin_scenario

    redactor = Redactor()
    setup_logging(log_level, log_format, redactor)
    sim = Simulator(load_scenario(builtin_scenario("demo")))
    with running([sim]):  # the simulator first: the exporter's config names its port
        workdir = Path(tempfile.mkdtemp(prefix="sigma-exporter-demo-"))
        config_file = write_demo_config(workdir, sim.url)
        config = load_or_fail(str(config_file), redactor)

        def announce(bound: str) -> None:
            click.echo(demo_banner(bound, sim.url, sim.base_url, config_file))
            click.echo(register_demo_run(config, f"http://{bound}", redactor.add))

        serve_until_stopped(
            config, str(config_file), listen, redactor, ready=announce, storage_path=str(workdir)
        )


def register_demo_run(config: Config, base: str, on_secret: Callable[[str], None]) -> str:
    """Start one run as a scheduler's job would, and register it through the API with the curl line's
    request; returns what to print."""
    client = SigmaClient(config.sigma, ApiStats(), pool_size=1, on_secret=on_secret)
    try:
        reference = client.start_run("report", "rpt-adhoc-extract")
    except SigmaError as exc:
        return f"could not start the demo's ad-hoc run: {exc}"
    finally:
        client.close()
    curl = registration_curl(base, reference)
    body = curl.split("-d '", 1)[1].rstrip("'")
    headers = {"Authorization": f"Bearer {DEMO_API_TOKEN}", "Content-Type": "application/json"}
    try:
        status = requests.post(f"{base}/api/v1/runs", data=body, headers=headers, timeout=5).status_code
    except requests.RequestException as exc:
        return f"could not register the demo's ad-hoc run: {type(exc).__name__}"
    return f"Registered one run through the API ({status}), as a scheduler's job would:\n  {curl}\n"
