"""Command line: serve, check-config, once, simulate, demo, run-report, doctor. Every option has an environment twin."""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sigma_exporter import __version__
from sigma_exporter.app import build_core, build_exporter, run_until_signalled
from sigma_exporter.clioptions import (
    DEFAULT_LISTEN,
    RecordSpec,
    config_option,
    option,
    record_options,
    shard_count_option,
    shard_index_option,
    with_logging,
)
from sigma_exporter.config.load import Config, ConfigError, load_config, watch_problem
from sigma_exporter.demo import demo_banner, register_demo_run, write_demo_config
from sigma_exporter.doctor_cli import doctor_command
from sigma_exporter.logsetup import Redactor, setup_logging
from sigma_exporter.runreport_cli import run_report_command
from sigma_exporter.runs.references import ReferenceFiles, in_shard, merge_references
from sigma_exporter.runs.store.memory import MemoryStore
from sigma_exporter.sigma.client import ExchangeHook
from sigma_exporter.web.listen import ListenAddressError, parse_listen_address
from sigma_exporter.web.server import Limits
from sigma_exporter.web.webconfig import parse_go_duration, validate_web_config_file

log = logging.getLogger("sigma_exporter")


def fail(message: str) -> None:
    log.error(message)
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def load_or_fail(path: str, redactor: Redactor) -> Config:
    try:
        config = load_config(path)
    except ConfigError as exc:
        fail(str(exc))
        raise AssertionError from exc  # unreachable: fail() exits
    redactor.add(*config.secrets())
    return config


def check_shard(index: int, count: int) -> None:
    if count < 1 or not 0 <= index < count:
        fail(f"--shard.index must be in [0, --shard.count); got index {index} of {count}")


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A Go/Prometheus duration (30s, 1m30s, 500ms) or plain seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip()
        seconds = parse_go_duration(text)
        if seconds is None:
            try:
                seconds = float(text)
            except ValueError:
                self.fail(f"{value!r} is not a duration (examples: 30s, 1m30s, 500ms)", param, ctx)
        if not seconds > 0:  # also NaN
            self.fail(f"{value!r} must be above zero", param, ctx)
        return seconds


def serve_until_stopped(
    config: Config,
    config_file: str,
    listen: str,
    redactor: Redactor,
    *,
    shard_index: int = 0,
    shard_count: int = 1,
    web_config_file: str | None = None,
    open_health: bool = False,
    limits: Limits | None = None,
    ready: Callable[[str], None] | None = None,
    storage_path: str | None = None,
    on_exchange: ExchangeHook | None = None,
) -> None:
    try:
        address = parse_listen_address(listen)
    except ListenAddressError as exc:
        fail(str(exc))
        return
    try:
        exporter = build_exporter(
            config_file,
            config,
            address,
            redactor.add,
            shard_index=shard_index,
            shard_count=shard_count,
            web_config_file=web_config_file,
            open_health=open_health,
            limits=limits,
            storage_path=storage_path,
            on_exchange=on_exchange,
        )
    except ConfigError as exc:
        fail(str(exc))
        return
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")
        return
    run_until_signalled(exporter, ready, config_file=config_file, shard=f"{shard_index}/{shard_count}")


# --- commands ------------------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="sigma-exporter")
def main() -> None:
    """Prometheus exporter for Sigma, the report engine of Intellect Design Arena's Canvas platform.

    It watches report and report-group runs by reference number, polls Sigma's report-status API in the
    background and serves what it saw on /metrics (scrapes never wait on Sigma), with a status page on /.

    Quick start: `sigma-exporter demo`. Configuration reference: README.md; metrics: docs/metrics.md.
    """


@main.command()
@config_option
@option(
    "--web.listen-address", "listen", default=DEFAULT_LISTEN, help="Address to serve on: HOST:PORT or :PORT."
)
@option(
    "--web.config.file",
    "web_config_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="TLS and basic-auth settings, in the Prometheus exporter-toolkit web-config format; re-read on change.",
)
@option(
    "--web.open-health-endpoints",
    "open_health",
    is_flag=True,
    default=False,
    help="Serve /-/healthy and /-/ready without basic auth (for Kubernetes probes).",
)
@option(
    "--web.read-timeout",
    "read_timeout",
    default="30s",
    type=Duration(),
    help="A request must arrive whole (head and body) within this of its first byte, or the connection is closed.",
)
@option(
    "--web.idle-timeout",
    "idle_timeout",
    default="2m",
    type=Duration(),
    help="A keep-alive connection with no request in flight is closed after this.",
)
@option(
    "--web.max-connections",
    "max_connections",
    default=Limits.max_connections,
    type=click.IntRange(min=16),
    help="Open connections beyond this are closed as soon as they are accepted (counted in "
    "sigma_web_requests_rejected_total).",
)
@option(
    "--storage.path",
    "storage_path",
    default=None,
    type=click.Path(file_okay=False),
    help="Directory of the embedded SQLite state store (default data/ in the working directory, as "
    "Prometheus). Ignored when the config sets state.url.",
)
@shard_index_option
@shard_count_option
@record_options
@with_logging
def serve(
    config_file: str,
    listen: str,
    web_config_file: str | None,
    open_health: bool,
    read_timeout: float,
    idle_timeout: float,
    max_connections: int,
    storage_path: str | None,
    shard_index: int,
    shard_count: int,
    record: RecordSpec,
    log_level: str,
    log_format: str,
) -> None:
    """Run the exporter: poll Sigma in the background and serve /metrics, /, /-/healthy, /-/ready and
    /-/reload (POST; SIGHUP does the same)."""
    redactor = Redactor()
    setup_logging(log_level, log_format, redactor)
    check_shard(shard_index, shard_count)
    config = load_or_fail(config_file, redactor)
    recording = record.recording(redactor.redact)
    serve_until_stopped(
        config,
        config_file,
        listen,
        redactor,
        shard_index=shard_index,
        shard_count=shard_count,
        web_config_file=web_config_file,
        open_health=open_health,
        limits=Limits(read_timeout=read_timeout, idle_timeout=idle_timeout, max_connections=max_connections),
        storage_path=storage_path,
        on_exchange=recording,
    )


@main.command("check-config")
@config_option
@option(
    "--web.config.file",
    "web_config_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also validate this web config (and load the certificates it names).",
)
@shard_index_option
@shard_count_option
def check_config(config_file: str, web_config_file: str | None, shard_index: int, shard_count: int) -> None:
    """Validate the configuration and its reference files (and the web config when given); exit 0, or 1
    with a message naming the file, the key and what is wrong."""
    try:
        config = load_config(config_file)
        files = ReferenceFiles(config.references.files)
        files.refresh(strict=True)
        web_users = bool(validate_web_config_file(web_config_file).users) if web_config_file else False
        problem = watch_problem(config, web_users=web_users)
        if problem is not None:
            raise problem
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        click.echo("error: --shard.index must be in [0, --shard.count)", err=True)
        raise SystemExit(1)
    merged, notes = merge_references(config, files)
    for note in notes:
        click.echo(f"warning: {note}", err=True)
    mine = in_shard(merged, shard_index, shard_count)
    reports = sum(1 for r in mine if r.kind == "report")
    shard = f" (shard {shard_index} of {shard_count})" if shard_count > 1 else ""
    click.echo(
        f"{config_file}: OK: {len(mine)} references{shard}: {reports} reports, {len(mine) - reports} groups; "
        f"{len(files.paths())} reference files; Sigma {config.sigma.url} with {config.sigma.auth.type} auth"
        + f"; {len(config.expectations.expectations)} expectations, {len(config.expectations.schedules)} schedules"
        + (f"; web config {web_config_file} OK" if web_config_file else "")
    )


@main.command()
@config_option
@record_options
@with_logging
def once(
    config_file: str,
    record: RecordSpec,
    log_level: str,
    log_format: str,
) -> None:
    """Run one poll cycle and print the exposition to stdout; exit 0 when sigma_up is 1, else 1. It keeps
    no state: the state store of a running exporter is neither read nor written."""
    redactor = Redactor()
    setup_logging(log_level, log_format, redactor)
    config = load_or_fail(config_file, redactor)
    recording = record.recording(redactor.redact)
    try:
        core = build_core(config, on_secret=redactor.add, state=MemoryStore(), on_exchange=recording)
    except ConfigError as exc:
        fail(str(exc))
        return
    snapshot = core.poller.run_cycle()
    core.poller.stop()
    core.stop()
    sys.stdout.buffer.write(core.store.current().rendered.text)
    sys.stdout.flush()
    raise SystemExit(0 if snapshot.up else 1)


@main.command()
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


@main.command()
@option("--web.listen-address", "listen", default="127.0.0.1:9842", help="Where the exporter serves.")
@with_logging
def demo(listen: str, log_level: str, log_format: str) -> None:
    """Run the simulator and the exporter together on loopback, with a lively built-in scenario."""
    from sigma_exporter.simulator import Simulator, load_scenario
    from sigma_exporter.simulator.scenario import builtin_scenario

    redactor = Redactor()
    setup_logging(log_level, log_format, redactor)
    sim = Simulator(load_scenario(builtin_scenario("demo"))).start()
    workdir = Path(tempfile.mkdtemp(prefix="sigma-exporter-demo-"))
    config_file = write_demo_config(workdir, sim.url)
    config = load_or_fail(str(config_file), redactor)

    def announce(bound: str) -> None:
        click.echo(demo_banner(bound, sim.url, sim.base_url, config_file))
        click.echo(register_demo_run(config, f"http://{bound}"))

    try:
        serve_until_stopped(
            config, str(config_file), listen, redactor, ready=announce, storage_path=str(workdir)
        )
    finally:
        sim.stop()


main.add_command(run_report_command)
main.add_command(doctor_command)
