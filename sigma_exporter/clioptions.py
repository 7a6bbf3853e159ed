"""The options every command shares: each has an environment twin (`SIGMA_EXPORTER_...`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import click

from sigma_exporter.logsetup import FORMATS, LEVELS
from sigma_exporter.sigma.recording import Recording, Scrubber

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


@dataclass(frozen=True)
class RecordSpec:
    """What --record, --record.pseudonymize and --record.redact asked for."""

    directory: str | None = None
    pseudonymize: bool = False
    redact: tuple[str, ...] = ()

    def recording(self, redact: Callable[[str], str]) -> Recording | None:
        """The --record hook, or None without --record. Raises click.BadParameter for a bad pattern."""
        if self.directory is None:
            if self.pseudonymize or self.redact:
                raise click.BadParameter(
                    "goes with --record DIR", param_hint="--record.pseudonymize/--record.redact"
                )
            return None
        try:
            compiled = [re.compile(pattern) for pattern in self.redact]
        except re.error as exc:
            raise click.BadParameter(
                f"not a regular expression: {exc}", param_hint="--record.redact"
            ) from None
        try:
            return Recording(Path(self.directory), Scrubber(redact, compiled, pseudonymize=self.pseudonymize))
        except OSError as exc:
            raise click.BadParameter(
                f"cannot create {self.directory}: {exc.strerror}", param_hint="--record"
            ) from None


def record_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--record DIR, --record.pseudonymize and --record.redact, handed to the command as `record`."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        record_dir: str | None,
        record_pseudonymize: bool,
        record_redact: tuple[str, ...],
        **kwargs: Any,
    ) -> Any:
        return command(
            *args, record=RecordSpec(record_dir, record_pseudonymize, tuple(record_redact)), **kwargs
        )

    decorated: Callable[..., Any] = wrapper
    for decorator in reversed(
        (
            option(
                "--record",
                "record_dir",
                default=None,
                type=click.Path(file_okay=False),
                help="Write every exchange with Sigma into this directory as a redacted fixture file (for a "
                "bug report; tokens, passwords, client tokens, cookies and configured secrets become <secret>).",
            ),
            option(
                "--record.pseudonymize",
                "record_pseudonymize",
                is_flag=True,
                default=False,
                help="With --record: replace reference numbers and report ids by stable pseudonyms.",
            ),
            option(
                "--record.redact",
                "record_redact",
                multiple=True,
                help="With --record: a regular expression whose matches also become <secret> (repeatable).",
            ),
        )
    ):
        decorated = decorator(decorated)
    return decorated
