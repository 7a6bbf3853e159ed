"""`sigma-exporter serve`: run the exporter until SIGTERM (the parts are built and started by app.py)."""

from __future__ import annotations

from collections.abc import Callable

import click

from sigma_exporter.app import build_exporter, serve_until_signalled
from sigma_exporter.cli.logsetup import Redactor, setup_logging
from sigma_exporter.cli.options import (
    DEFAULT_LISTEN,
    Duration,
    RecordSpec,
    check_shard,
    config_option,
    fail,
    load_or_fail,
    option,
    record_options,
    shard_count_option,
    shard_index_option,
    with_logging,
)
from sigma_exporter.config.load import Config, ConfigError
from sigma_exporter.sigma.client import ExchangeHook
from sigma_exporter.web.external import ExternalUrlError, external_url
from sigma_exporter.web.listen import ListenAddressError, parse_listen_address
from sigma_exporter.web.server import Limits


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
    external: str | None = None,
) -> None:
    """Build the exporter for `config` on `listen` and serve until SIGTERM or SIGINT (`serve` and `demo`);
    `ready` gets the bound address once it answers. A bad listen address or external URL, a bad config or
    web config and an address in use exit 1 through `fail`."""
    try:
        address = parse_listen_address(listen)
        url = external_url(external, address) if external else ""  # the default once TLS is known
    except (ListenAddressError, ExternalUrlError) as exc:
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
            redact=redactor.redact,
            external_url=url,
        )
        serve_until_signalled(exporter, ready, config_file=config_file, shard=f"{shard_index}/{shard_count}")
    except ConfigError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")


@click.command()
@config_option
@option(
    "--web.listen-address", "listen", default=DEFAULT_LISTEN, help="Address to serve on: HOST:PORT or :PORT."
)
@option(
    "--web.external-url",
    "external",
    default=None,
    help="The exporter's address as its users reach it, e.g. through a proxy: https://gateway.example.com/sigma/. "
    "Alerts and dashboards link each report identity to <URL>report?report_group_id=G&report_id=R (label "
    "report_url of sigma_report_info). The exporter's own routes do not change: a proxy that adds a path "
    "must strip it.",
    show_default="http(s with TLS)://<FQDN of this host, or the listen host>:<listen port>/",
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
    external: str | None,
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
        external=external,
    )
