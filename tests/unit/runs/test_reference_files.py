"""Reference files: a broken file keeps its last good references, is reported while it stays broken, and is
read again only when it changes; its error is logged once per broken version."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from sigma_exporter.config.model import Reference
from sigma_exporter.runs.holdings import Holdings
from sigma_exporter.runs.references import ReferenceFiles, Shard
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.store.memory import MemoryStore
from sigma_exporter.runs.store.writer import StateWriter
from tests.support.factories import config


def write(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime, mtime))


def test_a_broken_file_keeps_its_references_and_is_not_read_again_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "refs.yml"
    write(path, "reports: [a, b]\n", 1_000_000_000)
    files = ReferenceFiles((str(tmp_path / "*.yml"),))
    assert files.refresh() == (True, [])
    write(path, "reports: {broken\n", 2_000_000_000)
    reads: list[str] = []
    from sigma_exporter.runs import references

    real = references.read_reference_file

    def counted(file: str) -> tuple[Reference, ...]:
        reads.append(file)
        return real(file)

    monkeypatch.setattr(references, "read_reference_file", counted)
    changed, errors = files.refresh()
    assert not changed and len(errors) == 1 and str(path) in errors[0]
    assert files.refresh() == (False, errors)  # still reported, not read again
    assert reads == [str(path)]
    assert [ref.reference for _, ref in files.references()] == ["a", "b"]
    write(path, "reports: [c]\n", 3_000_000_000)
    assert files.refresh() == (True, [])
    assert [ref.reference for _, ref in files.references()] == ["c"]


def test_the_holdings_log_a_broken_file_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "refs.yml"
    write(path, "reports: [a]\n", 1_000_000_000)
    store = MemoryStore()
    holdings = Holdings(Registry(store, StateWriter(store), max_runs=10), (10.0,), Shard())
    cfg = config(references={"files": [str(tmp_path / "*.yml")]})
    holdings.use_config(cfg, strict=True)
    write(path, "reports: 7\n", 2_000_000_000)
    with caplog.at_level(logging.ERROR, logger="sigma_exporter.runs.holdings"):
        for _ in range(5):
            assert len(holdings.refresh_files(cfg)) == 1
    assert len([r for r in caplog.records if "reference file is invalid" in r.getMessage()]) == 1
    assert list(holdings.runs) == [("report", "a")]


def test_runs_of_a_reference_file_say_they_came_from_a_file(tmp_path: Path) -> None:
    write(tmp_path / "refs.yml", "reports: [a]\ngroups: [g]\n", 1_000_000_000)
    store = MemoryStore()
    holdings = Holdings(Registry(store, StateWriter(store), max_runs=10), (10.0,), Shard())
    holdings.use_config(
        config(references={"reports": ["inline"], "files": [str(tmp_path / "*.yml")]}), strict=True
    )
    assert {key: run.ref.source for key, run in holdings.runs.items()} == {
        ("report", "inline"): "config",
        ("report", "a"): "file",
        ("group", "g"): "file",
    }
