"""The SQLite state store's own faults, made for real.

A full disk: the store sits on a small tmpfs that a filler file fills to ENOSPC while a real exporter
serves. While full, registrations (and deletions) get 503 with Retry-After, never 201; polling, statuses and
scrapes go on with sigma_state_up 0; the outage is logged once, however many requests it refuses. When space
comes back, writes resume (logged once), and after a kill -9 every run that got 201 is held and the counts
and last-success times (the ones the poller queued while the disk was full included) are still there.

A broken state file: cut in half, random bytes, a damaged page, a newer schema, read-only (an immutable file
or directory, a read-only mount). `serve` exits 1 with `error: FILE: problem` and the file is left as it
was (its bytes, its mtime, nothing created beside it). A read-only file is refused at start rather than
served with 503s: it will not heal by waiting (a full disk can), and an exporter that cannot write cannot
keep a single count across a restart. A file that is only unclean (the log a kill -9 leaves) is not refused.

Making a tmpfs, remounting it read-only and `chattr +i` need root: without it these tests skip with the
reason, and fail under CI=true. `check-config` does not open the state store, so only `serve` is run here.
"""

from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from sigma_exporter.runs.store.schema import LATEST
from sigma_exporter.runs.store.sqlite import examine
from sigma_exporter.simulator import Simulator
from tests.support.binaries import IN_CI
from tests.support.configs import config_text
from tests.support.net import free_port, wait_for
from tests.support.process import ExporterProcess, run_command
from tests.support.runs import SCENARIO, TOKEN, config, register, start_run, value
from tests.support.scenarios import scenario_from

#: The failure and the recovery lines, each to be logged once per outage.
DOWN_LINE = "cannot write to the state store"
UP_LINE = "state store writes work again"


def skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        skip_or_fail(f"{what} needs root (a tmpfs mount, a remount or chattr)")


def command(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path`, unmounted on leaving (every process using it must be stopped by then)."""
    need_root("a small filesystem")
    path.mkdir()
    mounted = command("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs (CAP_SYS_ADMIN?): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if command("umount", str(path)).returncode != 0:
            command("umount", "-l", str(path))
            pytest.fail(f"{path} was still busy at the end of the test (unmounted lazily)")


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """`chattr +i` on `path` (a file or a directory), undone on leaving. Root cannot write it either."""
    need_root("chattr +i")
    done = command("chattr", "+i", str(path))
    if done.returncode != 0:
        skip_or_fail(f"chattr +i does not work here: {done.stderr.strip()}")
    try:
        yield
    finally:
        command("chattr", "-i", str(path))


def fill(directory: Path) -> Path:
    """Write a filler file until the filesystem answers ENOSPC (down to its last byte); the filler."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    chunk = b"\0" * 65536
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
    assert os.statvfs(directory).f_bavail == 0
    return filler


def held(proc: ExporterProcess) -> set[str]:
    runs = requests.get(proc.url + "/api/v1/runs?state=all", timeout=10).json()["runs"]
    return {run["reference"] for run in runs}


def status(proc: ExporterProcess, reference: str) -> str:
    return str(requests.get(f"{proc.url}/api/v1/runs/{reference}", timeout=5).json()["status"])


# --- a full disk -----------------------------------------------------------------------------------------
@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(scenario_from(SCENARIO)) as simulator:
        yield simulator


def test_a_full_disk_refuses_registrations_logs_once_and_loses_nothing_when_space_comes_back(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    body = config(sim, tmp_path, references={"reports": ["cfg-1"]})
    with small_filesystem(tmp_path / "small", "2m") as small:
        started: list[ExporterProcess] = []
        try:
            proc = exporter_process(body, "--storage.path", str(small))
            started.append(proc)
            proc.wait_ready()
            acknowledged = []
            for i in range(5):
                reply = register(proc, {"reference": f"before-{i}", "kind": "report"})
                assert reply.status_code == 201
                acknowledged.append(f"before-{i}")
            empty = start_run(sim, "RUN_REPORT", "rpt-empty")  # NO_DATA_AVAILABLE at once: counted now
            assert register(proc, {"reference": empty, "kind": "report"}).status_code == 201
            acknowledged.append(empty)
            wait_for(
                lambda: value(proc, "sigma_report_runs_total", report_id="rpt-empty", outcome="no_data") == 1,
                10,
                what="rpt-empty counted",
            )
            daily = start_run(sim, "RUN_REPORT", "rpt-daily")  # GENERATED, then PUBLISHED 2 s after its start
            assert (
                register(proc, {"reference": daily, "kind": "report", "report_id": "rpt-daily"}).status_code
                == 201
            )
            acknowledged.append(daily)

            filler = fill(small)
            polls = value(proc, "sigma_last_poll_timestamp_seconds") or 0.0

            def one(i: int) -> requests.Response:
                return register(proc, {"reference": f"while-full-{i}", "kind": "report"})

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                refused = list(pool.map(one, range(30)))
            assert [r.status_code for r in refused] == [503] * 30
            assert all(int(r.headers["Retry-After"]) > 0 for r in refused)
            assert all("state store" in r.json()["error"] for r in refused)
            deleted = requests.delete(
                f"{proc.url}/api/v1/runs/before-0", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15
            )
            assert deleted.status_code == 503 and deleted.headers["Retry-After"]
            # Polling and scrapes go on: the daily run reaches PUBLISHED, which the writer cannot persist yet.
            wait_for(lambda: status(proc, daily) == "PUBLISHED", 10, what="the daily run's final status")
            wait_for(
                lambda: (value(proc, "sigma_last_poll_timestamp_seconds") or 0) > polls, 10, what="polling"
            )
            assert value(proc, "sigma_state_up") == 0.0
            assert held(proc).isdisjoint({f"while-full-{i}" for i in range(30)})
            assert "before-0" in held(proc)
            assert os.statvfs(small).f_bavail == 0  # still full: nothing the exporter did freed space
            down = proc.output().count(DOWN_LINE)
            assert down == 1, f"{down} lines for one outage:\n{proc.output()}"

            counted_while_full = value(
                proc, "sigma_report_runs_total", report_id="rpt-daily", outcome="success"
            )
            filler.unlink()
            space_back = time.monotonic()
            after = register(proc, {"reference": "after-space", "kind": "report"})
            assert after.status_code == 201
            acknowledged.append("after-space")
            wait_for(lambda: value(proc, "sigma_state_up") == 1.0, 35, what="sigma_state_up back to 1")
            wait_for(
                lambda: value(proc, "sigma_report_runs_total", report_id="rpt-daily", outcome="success") == 1,
                35,
                what="the daily run's count, queued while full, written",
            )
            resumed = time.monotonic() - space_back
            last_success = value(proc, "sigma_report_last_success_timestamp_seconds", report_id="rpt-daily")
            assert last_success
            # The recovery is logged once too, by whichever write worked first.
            wait_for(lambda: UP_LINE in proc.output(), 35, what="the recovery line")
            output = proc.output()
            assert output.count(DOWN_LINE) == 1 and output.count(UP_LINE) == 1, output
            proc.stop(signal.SIGKILL)

            again = exporter_process(body, "--storage.path", str(small))
            started.append(again)
            again.wait_ready()
            assert set(acknowledged) <= held(again)
            assert held(again).isdisjoint({f"while-full-{i}" for i in range(30)})
            assert value(again, "sigma_report_runs_total", report_id="rpt-daily", outcome="success") == 1
            assert value(again, "sigma_report_runs_total", report_id="rpt-empty", outcome="no_data") == 1
            assert (
                value(again, "sigma_report_last_success_timestamp_seconds", report_id="rpt-daily")
                == last_success
            )
            print(
                f"full disk: 30 of 30 registrations 503, 1 log line; the count queued while full shown as "
                f"{counted_while_full}; written {resumed:.2f} s after space came back; {len(acknowledged)} held"
            )
        finally:
            for proc in started:
                proc.stop(signal.SIGKILL)


# --- a broken state file ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def valid_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state file a real exporter wrote (runs registered, one counted) and closed cleanly."""
    directory = tmp_path_factory.mktemp("valid-state")
    with Simulator(scenario_from(SCENARIO)) as simulator:
        config_file = directory / "config.yml"
        config_file.write_text(config(simulator, directory))
        with ExporterProcess(config_file, "--storage.path", str(directory / "state")) as proc:
            for i in range(20):
                assert register(proc, {"reference": f"held-{i}", "kind": "report"}).status_code == 201
            empty = start_run(simulator, "RUN_REPORT", "rpt-empty")
            assert register(proc, {"reference": empty, "kind": "report"}).status_code == 201
            wait_for(
                lambda: value(proc, "sigma_report_runs_total", report_id="rpt-empty", outcome="no_data") == 1,
                10,
            )
            assert proc.stop() == 0
    state = directory / "state" / "sigma-exporter.db"
    assert sorted(p.name for p in state.parent.iterdir()) == [state.name]  # closed cleanly: no log beside it
    yield state


def cut_in_half(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def random_bytes(db: Path) -> None:
    db.write_bytes(os.urandom(db.stat().st_size))


def damaged_page(db: Path) -> None:
    with db.open("r+b") as handle:
        handle.seek(4096)  # the second page: a table's root
        handle.write(b"\xff" * 4096)


def newer_schema(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE schema_version SET version = ?", (LATEST + 1,))
    conn.commit()
    conn.close()


BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "cut in half": (cut_in_half, "truncated: "),
    "random bytes": (random_bytes, "not a SQLite database"),
    "a damaged page": (damaged_page, "damaged (SQLite: "),
    "a newer schema": (
        newer_schema,
        f"its schema version {LATEST + 1} is newer than this exporter's ({LATEST})",
    ),
}


def fingerprint(db: Path) -> tuple[str, int, list[str]]:
    """The file's bytes and mtime, and what lies beside it."""
    return (
        hashlib.sha256(db.read_bytes()).hexdigest(),
        db.stat().st_mtime_ns,
        sorted(p.name for p in db.parent.iterdir()),
    )


def refused_at_start(db: Path, problem: str, tmp_path: Path) -> None:
    """`serve` on `db` exits 1 with `error: DB: problem...`, and leaves the file as it was."""
    config_file = tmp_path / "config.yml"
    config_file.write_text(config_text("http://127.0.0.1:9/sigma", reports=["ref-1"]))
    before = fingerprint(db)
    try:
        done = run_command(
            "serve",
            config_file,
            "--storage.path",
            str(db.parent),
            "--web.listen-address",
            f"127.0.0.1:{free_port()}",
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve kept running on {db} ({problem})")
    assert done.returncode == 1, done.stderr
    assert f"error: {db}: {problem}" in done.stderr, done.stderr
    assert fingerprint(db) == before


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_state_file_stops_serve_naming_the_file_and_is_left_as_it_was(
    case: str, valid_state: Path, tmp_path: Path
) -> None:
    breaks, problem = BROKEN[case]
    db = tmp_path / "state" / valid_state.name
    db.parent.mkdir()
    shutil.copy(valid_state, db)
    breaks(db)
    refused_at_start(db, problem, tmp_path)


@pytest.mark.parametrize("what", ["file", "directory"])
def test_an_immutable_state_file_or_directory_stops_serve(
    what: str, valid_state: Path, tmp_path: Path
) -> None:
    db = tmp_path / "state" / valid_state.name
    db.parent.mkdir()
    shutil.copy(valid_state, db)
    with immutable(db if what == "file" else db.parent):
        refused_at_start(db, "read-only", tmp_path)


def test_a_state_file_on_a_read_only_mount_stops_serve(valid_state: Path, tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "ro", "1m") as mount:
        db = mount / valid_state.name
        shutil.copy(valid_state, db)
        remounted = command("mount", "-o", "remount,ro", str(mount))
        assert remounted.returncode == 0, remounted.stderr
        refused_at_start(db, "read-only (a read-only file system)", tmp_path)


def test_the_log_a_kill_9_leaves_is_not_mistaken_for_a_broken_file(
    sim: Simulator, exporter_process: Callable[..., ExporterProcess], tmp_path: Path, state_directory: Path
) -> None:
    body = config(sim, tmp_path)
    proc = exporter_process(body)
    proc.wait_ready()
    references = [f"unclean-{i}" for i in range(50)]
    for reference in references:
        assert register(proc, {"reference": reference, "kind": "report"}).status_code == 201
    proc.stop(signal.SIGKILL)
    db = state_directory / "sigma-exporter.db"
    assert (state_directory / "sigma-exporter.db-wal").stat().st_size > 0  # the runs are in the log only
    before = fingerprint(db)
    assert examine(db.absolute()) is None
    assert fingerprint(db) == before  # examining it wrote nothing
    again = exporter_process(body)
    again.wait_ready()
    assert set(references) <= held(again)


def test_examine_names_other_problems_and_passes_a_new_or_empty_file(
    tmp_path: Path, valid_state: Path
) -> None:
    assert examine(tmp_path / "absent.db") is None
    (tmp_path / "empty.db").write_bytes(b"")
    assert examine(tmp_path / "empty.db") is None
    assert examine(valid_state) is None
    (tmp_path / "a-directory.db").mkdir()
    assert examine(tmp_path / "a-directory.db") == "not a regular file"
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.commit()
    conn.close()
    problem = examine(other)
    assert problem is not None and problem.startswith(
        "not a sigma-exporter state store (its tables: accounts)"
    )
