"""The watched references: inline ones from the config plus reference files matched by globs, re-read
when they change, filtered to this process's shard."""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from sigma_exporter.config.load import Config, ConfigError, Reference, parse_reference_file, read_yaml_file

log = logging.getLogger(__name__)


def shard_of(reference: str, shard_count: int) -> int:
    """Stable across processes, hosts and Python versions (unlike hash())."""
    digest = hashlib.sha256(reference.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def in_shard(refs: Iterable[Reference], index: int, count: int) -> tuple[Reference, ...]:
    """The references shard `index` of `count` watches."""
    return Shard(index, count).select(refs)


@dataclass(frozen=True)
class Shard:
    """Which share of the runs, expectations and schedules this process takes: those whose name hashes to
    `index` of `count` (all of them with one shard)."""

    index: int = 0
    count: int = 1

    def owns(self, name: str) -> bool:
        """A run's reference, an identity's "group/report" or a schedule's name falls in this shard."""
        return self.count <= 1 or shard_of(name, self.count) == self.index

    def select(self, refs: Iterable[Reference]) -> tuple[Reference, ...]:
        """The references of `refs` this shard watches."""
        return tuple(ref for ref in refs if self.owns(ref.reference))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


FileStamp = tuple[str, int, int]  # path, mtime_ns, size


@dataclass(frozen=True)
class FileResult:
    """One reference file as last read well: its stamp (path, mtime, size) and its references."""

    stamp: FileStamp
    references: tuple[Reference, ...]


def _stamp(path: str) -> FileStamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_mtime_ns, st.st_size)


def read_reference_file(path: str) -> tuple[Reference, ...]:
    """The references of the file at `path`; ConfigError names the file and what is wrong."""
    return tuple(parse_reference_file(read_yaml_file(path, "reference file"), path))


class ReferenceFiles:
    """Reads the reference files of a config; `refresh()` re-reads only files whose stamp changed.

    A file that disappears takes its references with it (the operator removed them); a file that turns
    unreadable or invalid keeps its last good references, and the error is reported for as long as the
    file stays broken; a broken file is read again only when it changes. The poll thread's (through the
    holdings).
    """

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        self._files: dict[str, FileResult] = {}
        self._broken: dict[str, tuple[FileStamp, str]] = {}  # path -> (stamp read, error)

    def paths(self) -> list[str]:
        """The files the globs match now, sorted (directories left out)."""
        found: set[str] = set()
        for pattern in self.patterns:
            found.update(p for p in glob.glob(pattern) if os.path.isfile(p))
        return sorted(found)

    def refresh(self, *, strict: bool = False) -> tuple[bool, list[str]]:
        """(changed, errors). With `strict`, the first error raises ConfigError instead."""
        changed = False
        errors: list[str] = []
        current = self.paths()
        for gone in set(self._files) - set(current):
            del self._files[gone]
            changed = True
            log.info("reference file removed", extra={"file": gone})
        for gone in set(self._broken) - set(current):
            del self._broken[gone]
        for path in current:
            stamp = _stamp(path)
            old = self._files.get(path)
            broken = self._broken.get(path)
            if stamp is None or (old is not None and old.stamp == stamp and broken is None):
                continue
            if broken is not None and broken[0] == stamp:
                errors.append(broken[1])  # still broken, not read again
                continue
            try:
                refs = read_reference_file(path)
            except ConfigError as exc:
                if strict:
                    raise
                self._broken[path] = (stamp, str(exc))
                errors.append(str(exc))
                continue
            self._broken.pop(path, None)
            self._files[path] = FileResult(stamp, refs)
            changed = True
        return changed, errors

    def references(self) -> list[tuple[str, Reference]]:
        """(path, reference) of every file's last good references, by path."""
        return [(path, ref) for path, result in sorted(self._files.items()) for ref in result.references]


def merge_references(config: Config, files: ReferenceFiles) -> tuple[tuple[Reference, ...], list[str]]:
    """Inline references first, then file ones; a reference seen twice keeps its first entry."""
    merged: dict[str, Reference] = {}
    notes: list[str] = []
    for ref in config.references.references:
        merged[ref.reference] = ref
    for path, ref in files.references():
        if ref.reference in merged:
            notes.append(f"{path}: reference {ref.reference} is already watched; entry ignored")
            continue
        merged[ref.reference] = ref
    return tuple(merged.values()), notes
