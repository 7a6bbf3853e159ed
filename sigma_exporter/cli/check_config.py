"""`sigma-exporter check-config`: validate the config, its reference files and a web config."""

from __future__ import annotations

import click

from sigma_exporter.cli.options import config_option, option, shard_count_option, shard_index_option
from sigma_exporter.config.load import ConfigError, load_config, watch_problem
from sigma_exporter.runs.references import ReferenceFiles, in_shard, merge_references
from sigma_exporter.web.webconfig import validate_web_config_file


@click.command("check-config")
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
        + f"; identities retire after {config.retention.identity_seconds:g} s without a run, at most "
        + f"{config.retention.max_identities} across shards"
        + (f"; web config {web_config_file} OK" if web_config_file else "")
    )
