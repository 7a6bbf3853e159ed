"""Command line: serve, check-config, once, simulate, demo. Every option has an environment twin."""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import click

from sigma_exporter import __version__
from sigma_exporter.apistats import ApiStats
from sigma_exporter.config import Config, ConfigError, load_config
from sigma_exporter.exposition import ProcessPart
from sigma_exporter.logsetup import FORMATS, LEVELS, Redactor, setup_logging
from sigma_exporter.poller import Poller, initial_snapshot
from sigma_exporter.references import ReferenceFiles, in_shard, merge_references
from sigma_exporter.snapshot import ExporterInfo
from sigma_exporter.store import SnapshotStore
from sigma_exporter.web import HEALTH_PATHS, ListenAddressError, WebApp, parse_listen_address, start_server
from sigma_exporter.webconfig import WebConfigSecurity

log = logging.getLogger("sigma_exporter")

ENV_PREFIX: Final = "SIGMA_EXPORTER_"
DEFAULT_CONFIG: Final = "/etc/sigma-exporter/config.yml"
DEFAULT_LISTEN: Final = ":9842"
SHUTDOWN_SECONDS: Final = 2.0


def env(name: str) -> str:
    return ENV_PREFIX + name.upper().replace(".", "_").replace("-", "_")


def option(name: str, dest: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        name, dest, envvar=env(name.lstrip("-")), show_envvar=True, show_default=True, **kwargs
    )


config_option = option(
    "--config.file",
    "config_file",
    default=DEFAULT_CONFIG,
    type=click.Path(dir_okay=False),
    help="YAML configuration: Sigma URL and credentials, poll settings, references to watch.",
)
shard_index_option = option(
    "--shard.index",
    "shard_index",
    default=0,
    type=click.IntRange(min=0),
    help="This process's shard, 0-based.",
)
shard_count_option = option(
    "--shard.count",
    "shard_count",
    default=1,
    type=click.IntRange(min=1),
    help="Number of shards splitting the references (each reference is watched by exactly one).",
)
log_options = [
    option(
        "--log.level",
        "log_level",
        default="info",
        type=click.Choice(LEVELS),
        help="Least severe level logged.",
    ),
    option(
        "--log.format",
        "log_format",
        default="logfmt",
        type=click.Choice(FORMATS),
        help="Log line format (stderr).",
    ),
]


def with_logging(func: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(log_options):
        func = decorator(func)
    return func


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


def build(
    config: Config, shard_index: int, shard_count: int, redactor: Redactor
) -> tuple[Poller, SnapshotStore]:
    stats = ApiStats()
    info = ExporterInfo(
        version=__version__,
        python_version=sys.version.split()[0],
        shard_index=shard_index,
        shard_count=shard_count,
        status_series=config.metrics.status_series,
    )
    store = SnapshotStore(initial_snapshot(info, stats))
    try:
        poller = Poller(
            config,
            store,
            shard_index=shard_index,
            shard_count=shard_count,
            stats=stats,
            on_secret=redactor.add,
        )
    except ConfigError as exc:
        fail(str(exc))
        raise AssertionError from exc
    return poller, store


def load_security(path: str | None, open_health: bool) -> WebConfigSecurity | None:
    if not path:
        return None
    try:
        return WebConfigSecurity.from_file(path, HEALTH_PATHS if open_health else ())
    except ValueError as exc:
        fail(str(exc))
        raise AssertionError from exc


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
    ready: Callable[[str], None] | None = None,
) -> None:
    try:
        address = parse_listen_address(listen)
    except ListenAddressError as exc:
        fail(str(exc))
        return
    poller, store = build(config, shard_index, shard_count, redactor)
    security = load_security(web_config_file, open_health)

    def reload() -> tuple[bool, str]:
        def load() -> Config:
            new = load_config(config_file)
            redactor.add(*new.secrets())
            return new

        if security is not None:
            security.watcher.reload()
        return poller.reload(load)

    app = WebApp(store=store, reload=reload, process=ProcessPart(), security=security)
    try:
        server, _ = start_server(address, app)
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")
        return
    scheme = "https" if security is not None and security.tls_enabled else "http"
    bound = f"{address[0]}:{server.server_address[1]}"
    log.info(
        "sigma-exporter started",
        extra={
            "version": __version__,
            "listen": f"{scheme}://{bound}",
            "config": config_file,
            "shard": f"{shard_index}/{shard_count}",
        },
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            threading.Thread(target=reload, name="sigma-reload", daemon=True).start()
        else:
            log.info("shutting down", extra={"signal": signal.Signals(signum).name})
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    poll_thread = threading.Thread(target=poller.run_forever, name="sigma-poller", daemon=True)
    poll_thread.start()
    if ready is not None:
        ready(bound)
    while not stop.wait(0.5):
        pass
    poller.stop()
    closer = threading.Thread(target=server.shutdown, daemon=True)
    closer.start()
    closer.join(SHUTDOWN_SECONDS / 2)
    server.server_close()
    poll_thread.join(SHUTDOWN_SECONDS / 4)
    log.info("stopped")


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
@shard_index_option
@shard_count_option
@with_logging
def serve(
    config_file: str,
    listen: str,
    web_config_file: str | None,
    open_health: bool,
    shard_index: int,
    shard_count: int,
    log_level: str,
    log_format: str,
) -> None:
    """Run the exporter: poll Sigma in the background and serve /metrics, /, /-/healthy, /-/ready and
    /-/reload (POST; SIGHUP does the same)."""
    redactor = Redactor()
    setup_logging(log_level, log_format, redactor)
    check_shard(shard_index, shard_count)
    config = load_or_fail(config_file, redactor)
    serve_until_stopped(
        config,
        config_file,
        listen,
        redactor,
        shard_index=shard_index,
        shard_count=shard_count,
        web_config_file=web_config_file,
        open_health=open_health,
    )


@main.command("check-config")
@config_option
@shard_index_option
@shard_count_option
def check_config(config_file: str, shard_index: int, shard_count: int) -> None:
    """Validate the configuration and its reference files; exit 0, or 1 with a message naming the
    file, the key and what is wrong."""
    try:
        config = load_config(config_file)
        files = ReferenceFiles(config.references.files)
        files.refresh(strict=True)
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
    )


@main.command()
@config_option
@with_logging
def once(config_file: str, log_level: str, log_format: str) -> None:
    """Run one poll cycle and print the exposition to stdout; exit 0 when sigma_up is 1, else 1."""
    redactor = Redactor()
    setup_logging(log_level, log_format, redactor)
    config = load_or_fail(config_file, redactor)
    poller, store = build(config, 0, 1, redactor)
    snapshot = poller.run_cycle()
    poller.stop()
    sys.stdout.buffer.write(store.current().rendered.text)
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
@with_logging
def simulate(listen: str, scenario: str, log_level: str, log_format: str) -> None:
    """Run the bundled Sigma simulator (the documented API, its quirks and injectable faults)."""
    from sigma_exporter.simulator import Simulator, load_scenario
    from sigma_exporter.simulator.scenario import builtin_scenario

    setup_logging(log_level, log_format, Redactor())
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
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    sim.stop()


DEMO_CONFIG: Final = """\
sigma:
  url: {url}
  auth:
    type: apikey
    client_id: 8HIG1002H6
    client_token_file: {token_file}
  timeout_seconds: 2
poll:
  interval_seconds: 5
  concurrency: 4
  final_recheck_seconds: 30
references:
  reports:
    - {{reference: sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd, labels: {{team: finance}}}}
    - {{reference: demo-daily-balances, labels: {{team: treasury}}}}
    - {{reference: demo-loan-book, labels: {{team: lending}}}}
    - {{reference: demo-fx-exposure, labels: {{team: treasury}}}}
    - demo-dormant-accounts
  groups:
    - {{reference: grp-2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd, labels: {{team: finance}}}}
    - {{reference: demo-month-end, labels: {{team: finance}}}}
"""


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
    token_file = workdir / "client-token"
    token_file.write_text("sample72695bf9-3932-4f60-88b5-2f-2hjd\n")
    token_file.chmod(0o600)
    config_file = workdir / "config.yml"
    config_file.write_text(DEMO_CONFIG.format(url=sim.url, token_file=token_file))
    config = load_or_fail(str(config_file), redactor)

    def announce(bound: str) -> None:
        base = f"http://{bound}"
        click.echo(
            "\nsigma-exporter demo is running (Ctrl-C stops it):\n"
            f"  status page   {base}/\n"
            f"  metrics       {base}/metrics\n"
            f"  readiness     {base}/-/ready\n"
            f"  simulator     {sim.url}  (stats: {sim.base_url}/_sim/stats)\n"
            f"  config        {config_file}\n"
            "Reports change status every few seconds; some fail and recover.\n"
        )

    try:
        serve_until_stopped(config, str(config_file), listen, redactor, ready=announce)
    finally:
        sim.stop()
