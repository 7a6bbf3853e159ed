from sigma_exporter.cli import main

main(prog_name="sigma-exporter")
