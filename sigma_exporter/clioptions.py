"""The options every command shares: each has an environment twin (`SIGMA_EXPORTER_...`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import click

from sigma_exporter.logsetup import FORMATS, LEVELS

ENV_PREFIX: Final = "SIGMA_EXPORTER_"
DEFAULT_CONFIG: Final = "/etc/sigma-exporter/config.yml"
DEFAULT_LISTEN: Final = ":9842"


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
