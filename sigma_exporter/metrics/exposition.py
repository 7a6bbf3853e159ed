"""What a scrape gets: the snapshot's exposition (rendered by change, `render.py`) in the format it asked
for, gzipped or not, with the small process_* part rendered apart, at most once a second, so that CPU and
memory figures are current. The pre-compressed body and the process part are deflate blocks that refer to
nothing before them, so they are joined without recompressing into one gzip member (the renderer keeps the
body's CRC-32; the process part's is added to it).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from sigma_exporter.metrics.gzipped import GZIP_HEADER, deflated, gzip_trailer
from sigma_exporter.metrics.render import Rendered

TEXT_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OM_CONTENT_TYPE: Final = OPENMETRICS_CONTENT_TYPE
OM_EOF: Final = b"# EOF\n"


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
        self._cache: dict[bool, tuple[float, bytes, bytes]] = {}  # format -> (made at, plain, deflated)
        # gzip bodies joined with the current process part, reused until either changes (a few hundred
        # KiB at 10,000 references: a burst of Prometheus scrapes then costs no allocation of its own)
        self._joined: dict[bool, tuple[Rendered, bytes, bytes]] = {}

    def _current(self, openmetrics: bool) -> tuple[bytes, bytes]:
        now = time.monotonic()
        cached = self._cache.get(openmetrics)
        if cached is not None and now - cached[0] < self._max_age:
            return cached[1], cached[2]
        if openmetrics:
            data = generate_openmetrics(self._registry).removesuffix(OM_EOF) + OM_EOF  # type: ignore[no-untyped-call]
        else:
            data = generate_latest(self._registry)
        entry = (now, data, deflated(data))
        self._cache[openmetrics] = entry  # one assignment: safe across threads
        return entry[1], entry[2]

    def body(self, openmetrics: bool) -> bytes:
        """The process part in one format, uncompressed; rendered again when the cached one is older than
        `max_age`. Called on the web server's event loop for each scrape; the cache is safe across threads
        (one assignment per update)."""
        return self._current(openmetrics)[0]

    def gzip_joined(self, rendered: Rendered, openmetrics: bool) -> bytes:
        """The snapshot's body followed by the process part, as one gzip member; the last join is reused
        while neither changed."""
        plain, part = self._current(openmetrics)
        cached = self._joined.get(openmetrics)
        if cached is not None and cached[0] is rendered and cached[1] is part:
            return cached[2]
        if openmetrics:
            static, (crc, length) = rendered.openmetrics_deflated, rendered.openmetrics_check
        else:
            static, (crc, length) = rendered.text_deflated, rendered.text_check
        joined = GZIP_HEADER + static + part + gzip_trailer(zlib.crc32(plain, crc), length + len(plain))
        self._joined[openmetrics] = (rendered, part, joined)
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
        return process.gzip_joined(rendered, openmetrics)
    return b"".join(parts_for(rendered, process, openmetrics=openmetrics))  # one copy of the body


def parts_for(rendered: Rendered, process: ProcessPart, *, openmetrics: bool) -> tuple[bytes, ...]:
    """The uncompressed body as its pre-rendered parts, for a server that writes them without joining."""
    parts = rendered.openmetrics_parts if openmetrics else rendered.text_parts
    return (*parts, process.body(openmetrics))
