"""Stage 7, the command line: one module per command (serve, check-config, once, simulate, demo, run-report,
doctor) and the shared options (`options.py`, `logsetup.py`). Commands parse and call, nothing more: the
parts are built, started and stopped by `app.py`. Every option has an environment twin. May import:
everything."""

from __future__ import annotations

import click

from sigma_exporter import __version__
from sigma_exporter.cli.check_config import check_config
from sigma_exporter.cli.demo import demo
from sigma_exporter.cli.doctor import doctor_command
from sigma_exporter.cli.once import once
from sigma_exporter.cli.run_report import run_report_command
from sigma_exporter.cli.serve import serve
from sigma_exporter.cli.simulate import simulate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="sigma-exporter")
def main() -> None:
    """Prometheus exporter for Sigma, the report engine of Intellect Design Arena's Canvas platform.

    It watches report and report-group runs by reference number, polls Sigma's report-status API in the
    background and serves what it saw on /metrics (scrapes never wait on Sigma), with a status page on /.

    Quick start: `sigma-exporter demo`. Configuration reference: README.md; metrics: docs/metrics.md.
    """


for command in (serve, check_config, once, simulate, demo, run_report_command, doctor_command):
    main.add_command(command)

__all__ = ["main"]
