"""The exposition, rendered once per snapshot and reused by every scrape.

A scrape only picks bytes: text or OpenMetrics (content negotiation), gzip or not. The small process_*
part is rendered apart, at most once a second, so that CPU and memory figures are current; gzip allows
concatenated members, so the pre-compressed body and the process part are joined without recompressing.
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from sigma_exporter.metrics.collector import families
from sigma_exporter.metrics.families import escape_value
from sigma_exporter.metrics.snapshot import Snapshot

TEXT_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OM_CONTENT_TYPE: Final = OPENMETRICS_CONTENT_TYPE
OM_EOF: Final = b"# EOF\n"
GZIP_LEVEL: Final = 5


@dataclass(frozen=True)
class Rendered:
    """One snapshot's exposition. The sample lines of each family are kept once, as bytes shared by both
    formats; only the small HELP/TYPE headers exist twice. The identity bodies are joined when asked
    for (a scrape joins them with the process part anyway), so a snapshot holds its samples once, not
    twice: at 10,000 references 14 MB instead of 28 MB, and as much less while the next one renders."""

    text_parts: tuple[bytes, ...]
    openmetrics_parts: tuple[bytes, ...]  # without the closing "# EOF"
    text_gzip: bytes
    openmetrics_gzip: bytes

    @property
    def text(self) -> bytes:
        """The whole text-format body (joined on each call)."""
        return b"".join(self.text_parts)

    @property
    def openmetrics(self) -> bytes:
        """The OpenMetrics body without the closing "# EOF"."""
        return b"".join(self.openmetrics_parts)


def _text_help(doc: str) -> str:
    return doc.replace("\\", r"\\").replace("\n", r"\n")


def _om_help(doc: str) -> str:
    return escape_value(doc)


def render(snapshot: Snapshot) -> Rendered:
    """Both formats from one pass: the sample lines are shared, only the family headers differ (the text
    format names a counter family `<name>_total`). The gzip bodies are compressed as the parts come."""
    text_parts: list[bytes] = []
    om_parts: list[bytes] = []
    text_zip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: a gzip stream, mtime 0
    om_zip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    text_gzip: list[bytes] = []
    om_gzip: list[bytes] = []
    for family in families(snapshot):
        body = "".join(family.lines).encode("utf-8")
        family.lines = []  # let the strings go as soon as their bytes exist
        name, kind = family.name, family.kind
        text_name = f"{name}_total" if kind == "counter" else name
        text_head = f"# HELP {text_name} {_text_help(family.documentation)}\n# TYPE {text_name} {kind}\n"
        om_head = f"# HELP {name} {_om_help(family.documentation)}\n# TYPE {name} {kind}\n"
        for parts, zipper, zipped, head in (
            (text_parts, text_zip, text_gzip, text_head.encode()),
            (om_parts, om_zip, om_gzip, om_head.encode()),
        ):
            parts.extend((head, body))
            zipped.append(zipper.compress(head))
            zipped.append(zipper.compress(body))
    text_gzip.append(text_zip.flush())
    om_gzip.append(om_zip.flush())
    return Rendered(
        text_parts=tuple(text_parts),
        openmetrics_parts=tuple(om_parts),
        text_gzip=b"".join(text_gzip),
        openmetrics_gzip=b"".join(om_gzip),
    )


class ProcessPart:
    """process_* metrics of this process and the live `collectors` (the HTTP server's counters: a few
    hundred bytes), rendered at most once per `max_age` seconds for each of the four variants, so that a
    burst of scrapes does not read /proc once each. Read by every scrape, on the web server's event loop."""

    def __init__(self, max_age: float = 1.0, collectors: Iterable[Collector] = ()) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self._registry)
        for collector in collectors:
            self._registry.register(collector)
        self._max_age = max_age
        self._cache: dict[tuple[bool, bool], tuple[float, bytes]] = {}
        # gzip bodies joined with the current process part, reused until either changes (a few hundred
        # KiB at 10,000 references: a burst of Prometheus scrapes then costs no allocation of its own)
        self._joined: dict[bool, tuple[bytes, bytes, bytes]] = {}

    def body(self, openmetrics: bool, compress: bool) -> bytes:
        """The process part in one format, gzipped or not; rendered again when the cached one is older than
        `max_age`. Called on the web server's event loop for each scrape; the cache is safe across threads
        (one assignment per update)."""
        now = time.monotonic()
        cached = self._cache.get((openmetrics, compress))
        if cached is not None and now - cached[0] < self._max_age:
            return cached[1]
        if openmetrics:
            data = generate_openmetrics(self._registry).removesuffix(OM_EOF) + OM_EOF  # type: ignore[no-untyped-call]
        else:
            data = generate_latest(self._registry)
        body = gzip.compress(data, 1, mtime=0) if compress else data
        self._cache[(openmetrics, compress)] = (now, body)  # one assignment: safe across threads
        return body

    def gzip_joined(self, static: bytes, openmetrics: bool) -> bytes:
        """`static` (a snapshot's gzip body) followed by the gzipped process part, as one gzip body; the last
        join is reused while neither changed."""
        part = self.body(openmetrics, True)
        cached = self._joined.get(openmetrics)
        if cached is not None and cached[0] is static and cached[1] is part:
            return cached[2]
        joined = static + part
        self._joined[openmetrics] = (static, part, joined)
        return joined


def wants_openmetrics(accept: str | None) -> bool:
    """True when the Accept header prefers OpenMetrics (as Prometheus' default header does)."""
    if not accept:
        return False
    best_om = best_text = -1.0
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media == "application/openmetrics-text":
            best_om = max(best_om, q)
        elif media in ("text/plain", "*/*", "text/*"):
            best_text = max(best_text, q)
    return best_om > 0 and best_om >= best_text


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when Accept-Encoding allows gzip (`gzip` or `*`, not with q=0)."""
    if not accept_encoding:
        return False
    weights: dict[str, bool] = {}
    for part in accept_encoding.split(","):
        fields = [f.strip() for f in part.split(";")]
        coding = fields[0].lower()
        if coding in ("gzip", "*"):
            refused = any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in fields[1:])
            weights[coding] = not refused
    return weights.get("gzip", weights.get("*", False))


def body_for(rendered: Rendered, process: ProcessPart, *, openmetrics: bool, compress: bool) -> bytes:
    """The whole /metrics body for one scrape: the snapshot's pre-rendered body and the process part, in the
    chosen format, gzipped or not."""
    if compress:
        return process.gzip_joined(
            rendered.openmetrics_gzip if openmetrics else rendered.text_gzip, openmetrics
        )
    return b"".join(parts_for(rendered, process, openmetrics=openmetrics))  # one copy of the body


def parts_for(rendered: Rendered, process: ProcessPart, *, openmetrics: bool) -> tuple[bytes, ...]:
    """The uncompressed body as its pre-rendered parts, for a server that writes them without joining."""
    parts = rendered.openmetrics_parts if openmetrics else rendered.text_parts
    return (*parts, process.body(openmetrics, False))
