"""Metric families with their sample lines already formatted, exactly as prometheus_client writes them
(labels sorted by name, values escaped, floats as Go prints them). The sample lines of the text format and
of OpenMetrics are the same, so the exposition writes each line once and only the HELP/TYPE headers differ.
At 10,000 references that is about 100,000 lines, which prometheus_client's writer takes seconds to
produce. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from prometheus_client.openmetrics.exposition import escape_label_name
from prometheus_client.utils import floatToGoString

_LEGACY_NAME: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def escape_value(value: str) -> str:
    """A label value as the exposition formats write it (backslash, newline and double quote escaped)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


@lru_cache(maxsize=1024)
def _label_name(name: str) -> str:
    return name if _LEGACY_NAME.match(name) else escape_label_name(name)


def format_value(value: float) -> str:
    """A sample value as prometheus_client writes it (Go's float format, `1.0` for one)."""
    return "1.0" if value == 1.0 else str(floatToGoString(value))  # type: ignore[no-untyped-call]


def labels_text(pairs: Iterable[tuple[str, str]]) -> str:
    """`{a="x",b="y"}` with the labels sorted by name, or "" without labels (prometheus_client's form)."""
    inner = ",".join(f'{_label_name(k)}="{escape_value(v)}"' for k, v in sorted(pairs))
    return f"{{{inner}}}" if inner else ""


@dataclass
class Family:
    """One metric family with its sample lines. `name` is the OpenMetrics family name (a counter's
    without `_total`); `kind` is gauge, counter or histogram."""

    name: str
    documentation: str
    kind: str
    labelnames: Sequence[str] = ()
    lines: list[str] = field(default_factory=list)
    #: The OpenMetrics lines where they differ from the text format's (None: they do not).
    om_lines: list[str] | None = None

    def add(self, values: Sequence[str], value: float, suffix: str = "") -> None:
        """One sample line with the label values of `labelnames`, in order; `suffix` (`_total`, `_bucket`...)
        is appended to the name."""
        self.add_labels(zip(self.labelnames, values, strict=True), value, suffix)

    def add_labels(self, pairs: Iterable[tuple[str, str]], value: float, suffix: str = "") -> None:
        """One sample line with the label pairs given (any names, sorted on output)."""
        self.lines.append(f"{self.name}{suffix}{labels_text(pairs)} {format_value(value)}\n")


def gauge(name: str, documentation: str, labels: Sequence[str] = (), value: float | None = None) -> Family:
    """A gauge family; with `value`, its one sample without labels."""
    family = Family(name, documentation, "gauge", labels)
    if value is not None:
        family.add((), value)
    return family


def counter(name: str, documentation: str, labels: Sequence[str] = (), value: float | None = None) -> Family:
    """A counter family (`name` without `_total`); with `value`, its one `_total` sample without labels."""
    family = Family(name, documentation, "counter", labels)
    if value is not None:
        family.add((), value, "_total")
    return family


def histogram(name: str, documentation: str, labels: Sequence[str] = ()) -> Family:
    """An empty histogram family; fill it with `add_histogram`."""
    return Family(name, documentation, "histogram", labels)


def add_histogram(
    family: Family,
    pairs: Sequence[tuple[str, str]],
    bounds: Sequence[float],
    counts: Sequence[int],
    total: float,
) -> None:
    """One histogram series: `counts` are per bucket (not cumulative), one per bound of `bounds` whose last is
    +Inf; written as the cumulative `_bucket` lines, then `_count` and `_sum`."""
    cumulative = 0
    for bound, count in zip(bounds, counts, strict=True):
        cumulative += count
        family.add_labels((*pairs, ("le", le_text(bound))), float(cumulative), "_bucket")
    family.add_labels(pairs, float(cumulative), "_count")
    family.add_labels(pairs, total, "_sum")


def le_text(bound: float) -> str:
    """A bucket's `le` label value: "+Inf", else Python's shortest repr of the bound."""
    return "+Inf" if bound == float("inf") else repr(bound)
