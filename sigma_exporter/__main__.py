"""`python -m sigma_exporter`: the `sigma-exporter` command line."""

from sigma_exporter.cli import main

main(prog_name="sigma-exporter")
