"""`sigma-exporter once`: one poll cycle, the exposition on stdout."""

from __future__ import annotations

import sys

import click

from sigma_exporter.app import run_once
from sigma_exporter.cli.logsetup import Redactor, setup_logging
from sigma_exporter.cli.options import (
    RecordSpec,
    config_option,
    fail,
    load_or_fail,
    record_options,
    with_logging,
)
from sigma_exporter.config.load import ConfigError


@click.command()
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
        snapshot, exposition = run_once(config, on_secret=redactor.add, on_exchange=recording)
    except ConfigError as exc:
        fail(str(exc))
        return
    sys.stdout.buffer.write(exposition)
    sys.stdout.flush()
    raise SystemExit(0 if snapshot.up else 1)
