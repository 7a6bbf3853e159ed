"""`sigma-exporter simulate`: the bundled Sigma simulator on its own, or a recording replayed."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from sigma_exporter.cli.logsetup import Redactor, setup_logging
from sigma_exporter.cli.options import fail, option, with_logging
from sigma_exporter.config.load import ConfigError
from sigma_exporter.web.listen import ListenAddressError, parse_listen_address


@click.command()
@option("--listen", "listen", default="127.0.0.1:9081", help="Address for the simulator: HOST:PORT.")
@option(
    "--scenario",
    "scenario",
    default="demo",
    help="Scenario YAML file, or the name of a built-in one (demo, vendor-samples).",
)
@option(
    "--replay",
    "replay_dir",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    help="Instead of a scenario, answer with the replies recorded in this --record directory.",
)
@with_logging
def simulate(listen: str, scenario: str, replay_dir: str | None, log_level: str, log_format: str) -> None:
    """Run the bundled Sigma simulator (the documented API, its quirks and injectable faults), or with
    --replay DIR a Sigma that answers as a recorded one did."""
    from sigma_exporter.simulator import Simulator, load_scenario
    from sigma_exporter.simulator.scenario import builtin_scenario

    setup_logging(log_level, log_format, Redactor())
    if replay_dir is not None:
        serve_replay(listen, Path(replay_dir))
        return
    try:
        host, port = parse_listen_address(listen)
        path = Path(scenario) if Path(scenario).is_file() else builtin_scenario(scenario)
        sim = Simulator(load_scenario(path), host, port)
    except (ConfigError, ListenAddressError) as exc:
        fail(str(exc))
        return
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")
        return
    sim.start()
    click.echo(f"Sigma simulator serving {sim.url} (scenario {path}); stats at {sim.base_url}/_sim/stats")
    wait_for_termination()
    sim.stop()


def wait_for_termination() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def serve_replay(listen: str, directory: Path) -> None:
    """Serve the recording in `directory` on `listen` until SIGTERM or SIGINT; an unreadable recording or an
    address in use exits 1 through `fail`."""
    from sigma_exporter.simulator.replay import Recorded, ReplayServer

    try:
        host, port = parse_listen_address(listen)
        server = ReplayServer((host, port), Recorded.load(directory)).start()
    except (ValueError, KeyError, ListenAddressError) as exc:
        fail(f"cannot replay {directory}: {exc}")
        return
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")
        return
    click.echo(f"Sigma replay serving {server.url} (recording {directory})")
    wait_for_termination()
    server.stop()
