"""Metric families with their sample lines already formatted, exactly as prometheus_client writes them
(labels sorted by name, values escaped, floats as Go prints them). The sample lines of the text format and
of OpenMetrics are the same but for exemplars (OpenMetrics only), so the exposition writes each line once,
twice only where it carries an exemplar, and the HELP/TYPE headers differ. At 10,000 references that is
about 100,000 lines, which prometheus_client's writer takes seconds to produce. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal
from functools import lru_cache
from typing import Final

from prometheus_client.openmetrics.exposition import escape_label_name
from prometheus_client.utils import floatToGoString

_LEGACY_NAME: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: OpenMetrics: an exemplar's label names and values together, in code points, at most.
EXEMPLAR_MAX_RUNES: Final = 128
_NANOSECOND: Final = Decimal("1e-9")
_WIDE: Final = Context(prec=60)


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


def timestamp_text(seconds: float) -> str:
    """An exemplar's timestamp as prometheus_client writes one it parsed: seconds, nine decimals (of the
    shortest form of `seconds`, not of its binary expansion)."""
    text = repr(seconds)
    whole, dot, fraction = text.partition(".")
    if dot and len(fraction) <= 9 and "e" not in text:
        return f"{whole}.{fraction:0<9}"
    return f"{Decimal(text).quantize(_NANOSECOND, context=_WIDE):f}"


def reference_exemplar(reference: str, value: float, timestamp: float) -> str:
    """`{reference="..."} value timestamp`, the exemplar of an OpenMetrics sample line (after " # "); "" when
    the label is longer than an exemplar may be (`EXEMPLAR_MAX_RUNES`): left out, never cut short."""
    if len("reference") + len(reference) > EXEMPLAR_MAX_RUNES:
        return ""
    return f'{{reference="{escape_value(reference)}"}} {format_value(value)} {timestamp_text(timestamp)}'


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

    def add_labels(
        self, pairs: Iterable[tuple[str, str]], value: float, suffix: str = "", exemplar: str = ""
    ) -> None:
        """One sample line with the label pairs given (any names, sorted on output); with `exemplar` (see
        `reference_exemplar`), its OpenMetrics line carries it."""
        self.add_line(f"{self.name}{suffix}{labels_text(pairs)} {format_value(value)}\n", exemplar)

    def add_written(self, labels: str, value: float, suffix: str = "") -> None:
        """One sample line whose labels are written already (`labels_text`), for a series with several."""
        self.add_line(f"{self.name}{suffix}{labels} {format_value(value)}\n")

    def add_line(self, line: str, exemplar: str = "") -> None:
        """One sample line as written, newline included; with `exemplar`, its OpenMetrics line carries it."""
        self.lines.append(line)
        if exemplar:
            if self.om_lines is None:
                self.om_lines = self.lines[:-1]
            self.om_lines.append(f"{line[:-1]} # {exemplar}\n")
        elif self.om_lines is not None:
            self.om_lines.append(line)


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
    exemplars: Sequence[str] = (),
) -> None:
    """One histogram series: `counts` are per bucket (not cumulative), one per bound of `bounds` whose last is
    +Inf; written as the cumulative `_bucket` lines, then `_count` and `_sum`. `exemplars`, when given, has
    one per cumulative bucket ("" for none)."""
    ordered = sorted(pairs)
    before = "".join(f'{_label_name(k)}="{escape_value(v)}",' for k, v in ordered if k < "le")
    after = "".join(f',{_label_name(k)}="{escape_value(v)}"' for k, v in ordered if k > "le")
    bucket = f"{family.name}_bucket{{{before}le="
    cumulative = 0
    for index, (bound, count) in enumerate(zip(bounds, counts, strict=True)):
        cumulative += count
        line = f'{bucket}"{le_text(bound)}"{after}}} {format_value(float(cumulative))}\n'
        family.add_line(line, exemplars[index] if exemplars else "")
    labels = labels_text(ordered)
    family.add_line(f"{family.name}_count{labels} {format_value(float(cumulative))}\n")
    family.add_line(f"{family.name}_sum{labels} {format_value(total)}\n")


def le_text(bound: float) -> str:
    """A bucket's `le` label value: "+Inf", else Python's shortest repr of the bound."""
    return "+Inf" if bound == float("inf") else repr(bound)
