"""The options every command shares (each has an environment twin, `SIGMA_EXPORTER_...`), and how a command
fails: one `error:` line on stderr, exit 1."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import click

from sigma_exporter.cli.logsetup import FORMATS, LEVELS, Redactor
from sigma_exporter.config.durations import parse_go_duration
from sigma_exporter.config.load import Config, ConfigError, load_config
from sigma_exporter.sigma.recording import Recording, Scrubber

log = logging.getLogger(__name__)

ENV_PREFIX: Final = "SIGMA_EXPORTER_"
DEFAULT_CONFIG: Final = "/etc/sigma-exporter/config.yml"
DEFAULT_LISTEN: Final = ":9842"


def env(name: str) -> str:
    """The environment twin of an option: `--web.listen-address` is `SIGMA_EXPORTER_WEB_LISTEN_ADDRESS`."""
    return ENV_PREFIX + name.upper().replace(".", "_").replace("-", "_")


def option(name: str, dest: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option with its environment twin, both shown in --help with the default (or the
    `show_default` text given)."""
    return click.option(
        name, dest, envvar=env(name.lstrip("-")), show_envvar=True, **{"show_default": True, **kwargs}
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
    """Add --log.level and --log.format to a command."""
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


def fail(message: str) -> None:
    """Log and print `message` as the command's error, and exit 1."""
    log.error(message)
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def load_or_fail(path: str, redactor: Redactor) -> Config:
    """The config at `path` (its secrets handed to the redactor), or exit 1 naming what is wrong."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        fail(str(exc))
        raise AssertionError from exc  # unreachable: fail() exits
    redactor.add(*config.secrets())
    return config


def check_shard(index: int, count: int) -> None:
    """Exit 1 unless 0 <= index < count."""
    if count < 1 or not 0 <= index < count:
        fail(f"--shard.index must be in [0, --shard.count); got index {index} of {count}")


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A Go/Prometheus duration (30s, 1m30s, 500ms) or plain seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        """Seconds, above zero; a usage error for anything else."""
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip()
        seconds = parse_go_duration(text)
        if seconds is None:
            try:
                seconds = float(text)
            except ValueError:
                self.fail(f"{value!r} is not a duration (examples: 30s, 1m30s, 500ms)", param, ctx)
        if not seconds > 0:  # also NaN
            self.fail(f"{value!r} must be above zero", param, ctx)
        return seconds
