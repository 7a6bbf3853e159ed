"""`sigma-exporter doctor`: its options (the work is in doctor.py)."""

from __future__ import annotations

import click

from sigma_exporter.app import diagnose
from sigma_exporter.cli.logsetup import Redactor, setup_logging
from sigma_exporter.cli.options import RecordSpec, config_option, option, record_options, with_logging
from sigma_exporter.config.durations import parse_go_duration
from sigma_exporter.config.load import ConfigError, load_config
from sigma_exporter.doctor.examine import Plan, Recorder
from sigma_exporter.doctor.findings import FAILED, render


@click.command("doctor")
@config_option
@option(
    "--reference",
    "references",
    multiple=True,
    help="A report run's reference number to check (repeatable); default: the first report references of the config.",
)
@option("--report-id", "report_id", default=None, help="With --run: the harmless report to run once.")
@option(
    "--run",
    "run",
    is_flag=True,
    default=False,
    help="Start one run of --report-id and follow it to a final status.",
)
@option(
    "--run.timeout",
    "run_timeout",
    default="10m",
    help="Give up following the run after this long (Go duration).",
)
@record_options
@with_logging
def doctor_command(
    config_file: str,
    references: tuple[str, ...],
    report_id: str | None,
    run: bool,
    run_timeout: str,
    record: RecordSpec,
    log_level: str,
    log_format: str,
) -> None:
    """Check, step by step, that the exporter would work against your Sigma with this config: the URL
    resolves and connects and its TLS verifies, GENERATE_TOKEN takes the credentials, where Sigma reads
    parameters (body or query), what each reference answers and which quirks its reply shows, the latency
    of the calls with suggested timeout_seconds and poll.concurrency, and with --run one run of a
    harmless report. One line per step: ok, warn or FAIL, with what to do. No secret is ever printed.
    With --record DIR, every exchange is also written there as a redacted fixture, to send with a bug
    report.

    \b
    Exit codes:
      0   the exporter would work as configured (warnings allowed)
      1   a step failed
      64  bad options or config
    """
    redactor = Redactor()
    setup_logging(log_level, log_format, redactor)
    timeout = parse_go_duration(run_timeout)
    if run and not report_id:
        click.echo("error: --run needs --report-id (a harmless report to run once)", err=True)
        raise SystemExit(64)
    if timeout is None:
        click.echo("error: --run.timeout takes a Go duration such as 90s or 10m", err=True)
        raise SystemExit(64)
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(64) from None
    redactor.add(*config.secrets())
    recorder = Recorder(forward=record.recording(redactor.redact))
    plan = Plan(
        references=tuple(r.strip() for r in references if r.strip()),
        run_report_id=report_id.strip() if run and report_id else None,
        run_timeout=timeout,
    )
    steps = diagnose(config, plan, recorder)
    redactor.add(*recorder.secrets)
    click.echo(render(steps, redactor.redact), nl=False)
    raise SystemExit(1 if any(step.result == FAILED for step in steps) else 0)
