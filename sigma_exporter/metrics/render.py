"""The exposition rendered by change. Runs and report identities sit in hash buckets of about eight; a
snapshot renders again (and gzips again) only the buckets in which an owner came, went or changed what it
shows, and reuses every other bucket's bytes, so that a cycle in which nothing changed costs a comparison
per owner, not a render of 30 MB. The small aggregate families are rendered every time.

Owners are ordered by the CRC-32 of their key (then the key), and a bucket is a range of that order (the top
bits of the CRC), so each family's body, its buckets' bodies in bucket order, lists the owners in the same
order whatever the number of buckets: a fresh `Exposition` renders a snapshot exactly as one that got there
by change. Each piece is also kept as deflate blocks that refer to nothing before them, so the gzip body is
their join between a header and a trailer: one gzip member (several members, which the format allows, are
read only in part by curl --compressed and, at some read boundaries, garbled by urllib3 2.8).
"""

from __future__ import annotations

import functools
import itertools
import operator
import zlib
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from sigma_exporter.metrics.collector import (
    api_families,
    exporter_families,
    references_family,
    reports_family,
    run_families,
)
from sigma_exporter.metrics.families import Family, escape_value
from sigma_exporter.metrics.gzipped import GZIP_HEADER, Checksums, deflated, gzip_trailer
from sigma_exporter.metrics.identities import (
    EXPECTATION_FAMILIES,
    has_expectations,
    identity_families,
    registry_families,
)
from sigma_exporter.metrics.snapshot import IdentityState, ReferenceState, Snapshot

#: Owners per bucket, on average: a change re-renders about this many owners' lines.
BUCKET_SIZE: Final = 8

V = TypeVar("V")
Renderer = Callable[[Sequence[V], Hashable], list[Family]]


@dataclass(frozen=True)
class Piece:
    """A family's lines of one bucket (or an aggregate family's whole body) in both formats, with their
    deflated blocks (see `deflated`); the OpenMetrics ones are the text ones (the same objects) where the
    lines do not differ."""

    text: bytes
    openmetrics: bytes
    text_gzip: bytes
    openmetrics_gzip: bytes

    @classmethod
    def of(cls, family: Family) -> Piece:
        """A family's sample lines as a piece."""
        text = "".join(family.lines).encode("utf-8")
        zipped = deflated(text)
        if family.om_lines is None:
            return cls(text, text, zipped, zipped)
        om = "".join(family.om_lines).encode("utf-8")
        return cls(text, om, zipped, deflated(om))


EMPTY: Final = Piece(b"", b"", b"", b"")


def _help(doc: str) -> str:
    return doc.replace("\\", r"\\").replace("\n", r"\n")


class Heads:
    """The HELP/TYPE lines of each family in both formats (the text format names a counter `<name>_total`),
    made once per family."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, str, str], Piece] = {}

    def of(self, family: Family) -> Piece:
        """The head of `family`."""
        key = (family.name, family.documentation, family.kind)
        head = self._made.get(key)
        if head is None:
            name, kind = family.name, family.kind
            text_name = f"{name}_total" if kind == "counter" else name
            text = f"# HELP {text_name} {_help(family.documentation)}\n# TYPE {text_name} {kind}\n".encode()
            om = f"# HELP {name} {escape_value(family.documentation)}\n# TYPE {name} {kind}\n".encode()
            head = self._made[key] = Piece(text, om, deflated(text), deflated(om))
        return head


class Buckets(Generic[V]):
    """Owners (runs or identities) by key in hash buckets, each bucket's families rendered and kept. The
    bucket count follows the number of owners (a power of two); when it changes, or the settings do, every
    bucket is rendered again."""

    def __init__(self, render: Renderer[V], key: Callable[[V], str], same: Callable[[V, V], bool]) -> None:
        self._render = render
        self._key = key
        self._same = same
        self._views: dict[str, V] = {}
        self._members: list[set[tuple[int, str]]] = []  # (CRC-32, key) per bucket
        self._pieces: list[list[Piece]] = []
        self._settings: Hashable = None
        self._order: tuple[V, ...] = ()  # the views of the last update, in their order
        self.rendered_total = 0  # buckets rendered, for the benchmarks

    def update(self, views: Sequence[V], settings: Hashable) -> None:
        """Bring the buckets up to `views`: render again the buckets whose owners came, went or changed."""
        if not self._in_place(views, settings):
            self._update(views, settings)
        self._order = tuple(views)

    def _in_place(self, views: Sequence[V], settings: Hashable) -> bool:
        """The common cycle: the same owners in the same order, most of them the very objects of last time.
        Only the views that are new objects are looked at; False when an owner came or went."""
        order = self._order
        if len(views) != len(order) or settings != self._settings or not self._members:
            return False
        changed = list(itertools.compress(range(len(views)), map(operator.is_not, views, order)))
        key = self._key
        if any(key(views[i]) != key(order[i]) for i in changed):
            return False
        dirty: set[int] = set()
        count = len(self._members)
        for i in changed:
            view, before = views[i], order[i]
            name = key(view)
            self._views[name] = view
            if not self._same(before, view):
                dirty.add(_bucket(_crc(name), count))
        for bucket in dirty:
            self._pieces[bucket] = self._render_bucket(bucket)
        return True

    def _update(self, views: Sequence[V], settings: Hashable) -> None:
        new = {self._key(view): view for view in views}
        count = len(self._members)
        wanted = _bucket_count(len(new), count)
        if wanted != count or settings != self._settings:
            self._settings = settings
            self._members = [set() for _ in range(wanted)]
            for key in new:
                crc = _crc(key)
                self._members[_bucket(crc, wanted)].add((crc, key))
            self._views = new
            self._pieces = [self._render_bucket(b) for b in range(wanted)]
            return
        dirty: set[int] = set()
        old = self._views
        for key, view in new.items():
            before = old.get(key)
            if before is None:
                crc = _crc(key)
                bucket = _bucket(crc, count)
                self._members[bucket].add((crc, key))
                dirty.add(bucket)
            elif before is not view and not self._same(before, view):
                dirty.add(_bucket(_crc(key), count))
        if len(new) != len(old) or dirty:
            for key in old.keys() - new.keys():
                crc = _crc(key)
                bucket = _bucket(crc, count)
                self._members[bucket].discard((crc, key))
                dirty.add(bucket)
        self._views = new
        for bucket in dirty:
            self._pieces[bucket] = self._render_bucket(bucket)

    def _render_bucket(self, bucket: int) -> list[Piece]:
        self.rendered_total += 1
        owners = [self._views[key] for _, key in sorted(self._members[bucket])]
        return [
            Piece.of(family) if family.lines else EMPTY for family in self._render(owners, self._settings)
        ]

    def pieces(self, family: int) -> Iterator[Piece]:
        """The pieces of family number `family` (in `render`'s order), bucket by bucket."""
        for pieces in self._pieces:
            piece = pieces[family]
            if piece is not EMPTY:
                yield piece


def _bucket_count(owners: int, current: int) -> int:
    """A power of two near owners / BUCKET_SIZE; kept while within a factor of four, so that a count that
    hovers around a boundary does not re-render everything at each step."""
    target = max(1, -(-owners // BUCKET_SIZE))
    if current and current // 4 <= target <= current * 4:
        return current
    return 1 << (target - 1).bit_length()


def _crc(key: str) -> int:
    return zlib.crc32(key.encode("utf-8"))


def _bucket(crc: int, count: int) -> int:
    """The bucket of a CRC among `count` (a power of two): its top bits, so buckets are ranges of CRCs."""
    return crc >> (32 - (count.bit_length() - 1)) if count > 1 else 0


def _run_key(state: ReferenceState) -> str:
    return f"{state.ref.kind}\0{state.ref.reference}"


def _same_run(a: ReferenceState, b: ReferenceState) -> bool:
    """Whether two states of a run show the same series (its last check time, say, is not shown)."""
    return a.up == b.up and a.ref == b.ref and a.reports == b.reports and a.group == b.group


def _identity_key(state: IdentityState) -> str:
    return f"{state.record.report_group_id}\0{state.record.report_id}"


def _same_identity(a: IdentityState, b: IdentityState) -> bool:
    return a == b


def _runs(states: Sequence[ReferenceState], sparse: Hashable) -> list[Family]:
    return run_families(states, bool(sparse))


def _identities(states: Sequence[IdentityState], settings: Hashable) -> list[Family]:
    assert isinstance(settings, tuple)
    bounds, external_url = settings
    return identity_families(states, bounds, external_url)


@dataclass(frozen=True)
class Rendered:
    """One snapshot's exposition as parts: both formats share every sample piece (only heads differ, and
    the pieces whose lines carry exemplars, which OpenMetrics alone has), and each part has its deflated
    blocks, so that a gzip body is a join and a trailer (the CRC-32 of the body, kept by the renderer), never
    a compression of the whole. A gzip body is one gzip member: readers that stop after the first member
    (curl) read it all."""

    text_parts: tuple[bytes, ...]
    openmetrics_parts: tuple[bytes, ...]  # without the closing "# EOF"
    text_gzip_parts: tuple[bytes, ...]  # deflated blocks, see `deflated`
    openmetrics_gzip_parts: tuple[bytes, ...]
    # Whose checksums (the renderer's, kept across snapshots) give the bodies' CRC-32 when first asked for
    text_checksums: Checksums = field(default_factory=Checksums, compare=False)
    openmetrics_checksums: Checksums = field(default_factory=Checksums, compare=False)

    @functools.cached_property
    def text_check(self) -> tuple[int, int]:
        """The text body's CRC-32 and length, worked out on the first gzip scrape (on the event loop, the
        only caller), from the first part that differs from the last body checked."""
        return self.text_checksums.of(self.text_parts)

    @functools.cached_property
    def openmetrics_check(self) -> tuple[int, int]:
        """The OpenMetrics body's CRC-32 and length (without "# EOF")."""
        return self.openmetrics_checksums.of(self.openmetrics_parts)

    @property
    def text(self) -> bytes:
        """The text format body."""
        return b"".join(self.text_parts)

    @property
    def openmetrics(self) -> bytes:
        """The OpenMetrics body without the closing "# EOF"."""
        return b"".join(self.openmetrics_parts)

    @functools.cached_property
    def text_deflated(self) -> bytes:
        """The text body as deflate blocks, none final (joined once, on the first gzip scrape)."""
        return b"".join(self.text_gzip_parts)

    @functools.cached_property
    def openmetrics_deflated(self) -> bytes:
        """The OpenMetrics body (without "# EOF") as deflate blocks, none final."""
        return b"".join(self.openmetrics_gzip_parts)

    @property
    def text_gzip(self) -> bytes:
        """The text body gzipped."""
        return GZIP_HEADER + self.text_deflated + gzip_trailer(*self.text_check)

    @property
    def openmetrics_gzip(self) -> bytes:
        """The OpenMetrics body (without "# EOF") gzipped."""
        return GZIP_HEADER + self.openmetrics_deflated + gzip_trailer(*self.openmetrics_check)


class Exposition:
    """Renders snapshots by change. Only the publisher calls `render` (publishes are serialised)."""

    def __init__(self) -> None:
        self._heads = Heads()
        self._runs: Buckets[ReferenceState] = Buckets(_runs, _run_key, _same_run)
        self._identities: Buckets[IdentityState] = Buckets(_identities, _identity_key, _same_identity)
        self._text_check = Checksums()
        self._openmetrics_check = Checksums()

    @property
    def buckets_rendered(self) -> int:
        """Buckets rendered so far, of runs and identities (what a render by change saves is the rest)."""
        return self._runs.rendered_total + self._identities.rendered_total

    def render(self, snapshot: Snapshot) -> Rendered:
        """Both formats of `snapshot`, reusing what did not change since the last call. The families of
        runs and identities come first and the small ones that change every cycle (API calls, the poll's
        own figures) last, so that the checksum of a cycle in which no run changed covers only those."""
        sparse = snapshot.info.status_series == "current"
        bounds = snapshot.registry.duration_bounds
        self._runs.update(snapshot.references, sparse)
        self._identities.update(snapshot.identities, (bounds, snapshot.info.external_url))
        run_specs = run_families((), sparse)
        identity_specs = identity_families((), bounds)
        if not has_expectations(snapshot):
            identity_specs = identity_specs[:-EXPECTATION_FAMILIES]
        parts = _Parts(self._heads)
        for index, spec in enumerate(run_specs):
            parts.add(spec, self._runs.pieces(index))
        for index, spec in enumerate(identity_specs):
            parts.add(spec, self._identities.pieces(index))
        parts.whole(reports_family(snapshot))
        parts.whole(references_family(snapshot))
        for family in (*api_families(snapshot), *registry_families(snapshot), *exporter_families(snapshot)):
            parts.whole(family)
        return parts.rendered(self._text_check, self._openmetrics_check)


_TEXT = operator.attrgetter("text")
_OPENMETRICS = operator.attrgetter("openmetrics")
_TEXT_GZIP = operator.attrgetter("text_gzip")
_OPENMETRICS_GZIP = operator.attrgetter("openmetrics_gzip")


class _Parts:
    def __init__(self, heads: Heads) -> None:
        self._heads = heads
        self._pieces: list[Piece] = []

    def add(self, spec: Family, body: Iterator[Piece]) -> None:
        self._pieces.append(self._heads.of(spec))
        self._pieces.extend(body)

    def whole(self, family: Family) -> None:
        self.add(family, iter((Piece.of(family),)) if family.lines else iter(()))

    def rendered(self, text_check: Checksums, openmetrics_check: Checksums) -> Rendered:
        pieces = self._pieces
        text = tuple(map(_TEXT, pieces))
        openmetrics = tuple(map(_OPENMETRICS, pieces))
        return Rendered(
            text_parts=text,
            openmetrics_parts=openmetrics,
            text_gzip_parts=tuple(filter(None, map(_TEXT_GZIP, pieces))),
            openmetrics_gzip_parts=tuple(filter(None, map(_OPENMETRICS_GZIP, pieces))),
            text_checksums=text_check,
            openmetrics_checksums=openmetrics_check,
        )


def render(snapshot: Snapshot) -> Rendered:
    """A snapshot rendered from nothing (what every render by change must equal)."""
    return Exposition().render(snapshot)
