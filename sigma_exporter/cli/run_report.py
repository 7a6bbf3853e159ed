"""`sigma-exporter run-report`: its options (the work is in runreport.py)."""

from __future__ import annotations

import click

from sigma_exporter.cli.logsetup import Redactor, setup_logging
from sigma_exporter.cli.options import config_option, option, with_logging
from sigma_exporter.config.durations import parse_go_duration
from sigma_exporter.config.load import ConfigError, load_config
from sigma_exporter.runreport.job import EXIT_USAGE, Request, UsageError, read_filter, read_token, run_report


class _UsageExit(click.Command):
    """click answers usage errors with exit 2; run-report keeps 2 for a timeout, so usage errors exit 64."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.show()
            raise SystemExit(EXIT_USAGE) from None


@click.command("run-report", cls=_UsageExit)
@config_option
@option("--report-id", "report_id", default=None, help="Run this report (RUN_REPORT).")
@option("--report-group-id", "group_id", default=None, help="Run this report group (EXEC_REPORT_GROUP).")
@option(
    "--filter-file",
    "filter_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="JSON object sent unchanged as reportFilter (preHookParams, filterDef[], ...).",
)
@option(
    "--register",
    "register_url",
    default=None,
    help="Exporter to register the run with (its base URL, e.g. http://sigma-exporter:9842), with submitted_at.",
)
@option(
    "--api.token-file",
    "token_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Bearer token for --register (the exporter's api.token_file).",
)
@option("--wait", "wait", is_flag=True, default=False, help="Follow the run to a final status (exit 0/1/2).")
@option(
    "--wait.timeout",
    "wait_timeout",
    default="1h",
    help="Give up waiting after this long (Go duration): exit 2.",
)
@option("--wait.interval", "wait_interval", default="2s", help="Time between status checks while waiting.")
@with_logging
def run_report_command(
    config_file: str,
    report_id: str | None,
    group_id: str | None,
    filter_file: str | None,
    register_url: str | None,
    token_file: str | None,
    wait: bool,
    wait_timeout: str,
    wait_interval: str,
    log_level: str,
    log_format: str,
) -> None:
    """Start one run through Sigma and print its reference number alone on stdout's first line: what a
    Control-M, cron or Airflow job calls instead of the vendor's sample script.

    \b
    Exit codes:
      0   started (with --wait: ended in success or no data)
      1   with --wait: the run failed, or Sigma lost it
      2   with --wait: no final status within --wait.timeout
      3   Sigma refused to start the run, or could not be reached
      4   started, but --register failed (the reference is still printed)
      64  bad options, config or filter file
    """
    redactor = Redactor()
    setup_logging(log_level, log_format, redactor)
    try:
        if bool(report_id) == bool(group_id):
            raise UsageError("give exactly one of --report-id or --report-group-id")
        if token_file and not register_url:
            raise UsageError("--api.token-file goes with --register")
        timeout = parse_go_duration(wait_timeout)
        interval = parse_go_duration(wait_interval)
        if timeout is None or interval is None:
            raise UsageError("--wait.timeout and --wait.interval take Go durations such as 90s, 30m or 2h")
        try:
            config = load_config(config_file)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        redactor.add(*config.secrets())
        token = read_token(token_file) if token_file else None
        if token is not None:
            redactor.add(token.reveal())
        request = Request(
            kind="group" if group_id else "report",
            ident=(group_id or report_id or "").strip(),
            report_filter=read_filter(filter_file) if filter_file else None,
            register_url=register_url,
            api_token=token,
            wait=wait,
            wait_timeout=timeout,
            wait_interval=max(0.05, interval),
        )
    except UsageError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    raise SystemExit(run_report(config, request, on_secret=redactor.add))
