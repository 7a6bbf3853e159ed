"""Fault injection against a real `sigma-exporter serve` process, over loopback.

Each test starts the vendor-scenario simulator and an exporter polling it every INTERVAL seconds (with
`final_recheck_seconds: 0`, so every reference is checked every cycle), waits for a healthy baseline, turns
a fault on for several cycles, turns it off and measures the time until `sigma_up` is 1 and every reference
is up with its status series again.

Every scrape taken along the way (there are hundreds) must answer 200 within SCRAPE_LIMIT seconds, and
must not show a status series for a reference whose last check failed (INTERVAL, SCRAPE_LIMIT and the
scraper that checks this: tests/support/faults.py). The measured numbers go to
tests/out/faults.json (git-ignored, owned by the tests; a partial run such as `-k` updates its rows and keeps
the others) and are printed at the end of the session (see them with `pytest -s`; under pytest-xdist the
terminal summary prints them, since workers' output is not shown); docs/faults.md holds a table of them.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sigma_exporter.sigma.client import TOKEN_FAILURE_HOLD_SECONDS
from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.faults import ALL_REFS, FAULTS_JSON, GROUPS, INTERVAL, REPORTS, Scraper, View, table_lines
from tests.support.process import ExporterProcess
from tests.support.scenarios import SAMPLE_REF, VENDOR_SCENARIO, scenario_from

TIMEOUT = 0.4
#: Recovery must come within this long after a fault ends: the cycle in flight when the fault ends may
#: still fail (up to TIMEOUT), then the next one starts at most one interval later.
RECOVERY_BOUND = 2 * INTERVAL + TIMEOUT
#: Poll cycles a fault is held for once the metrics show it.
HOLD_CYCLES = 3
MAX_REPLY_BYTES = 65536

#: References whose replies carry a body (ref-pending's "no status yet" has none worth truncating).
BODY_REFS = ALL_REFS - {"ref-pending"}
REPORT_CHECK = "REPORT_INSTANCE_STATUS_CHECK"
GROUP_CHECK = "REPORT_GROUP_INSTANCE_STATUS_CHECK"
TOKEN = "GENERATE_TOKEN"
OUT = FAULTS_JSON


# --- the measured table -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def fault_table() -> Iterator[dict[str, dict[str, object]]]:
    table: dict[str, dict[str, object]] = {}
    yield table
    if not table:
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for row in table.values():
        row["measured_at"] = stamp
    # One writer at a time (pytest-xdist workers, or two sessions): read, merge and write under a lock.
    with (OUT.parent / "faults.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:  # a partial run (-k) updates its rows and keeps the others
            previous = json.loads(OUT.read_text()).get("faults", {})
        except (OSError, ValueError, AttributeError):
            previous = {}
        document = {
            "interval_seconds": INTERVAL,
            "timeout_seconds": TIMEOUT,
            "recovery_bound_seconds": RECOVERY_BOUND,
            "faults": {**previous, **table},
        }
        OUT.write_text(json.dumps(document, indent=2) + "\n")
    print("\n" + "\n".join(table_lines(table, INTERVAL, TIMEOUT)))


@dataclass
class Rig:
    sim: Simulator
    proc: ExporterProcess
    scrape: Scraper


def exporter_config(url: str, **extra: object) -> str:
    return config_text(
        url,
        reports=list(REPORTS),
        groups=list(GROUPS),
        sigma__timeout_seconds=TIMEOUT,
        sigma__max_reply_bytes=MAX_REPLY_BYTES,
        poll__interval_seconds=INTERVAL,
        poll__concurrency=8,
        poll__final_recheck_seconds=0,
        **extra,
    )


@pytest.fixture
def rig(exporter_process: Callable[..., ExporterProcess]) -> Iterator[Rig]:
    with Simulator(scenario_from(VENDOR_SCENARIO)) as sim:
        proc = exporter_process(exporter_config(sim.url))
        proc.wait_ready()
        scrape = Scraper(proc)
        scrape.until(View.healthy, 10, "healthy baseline")
        yield Rig(sim, proc, scrape)
        proc.stop()
        assert "Traceback" not in proc.output(), proc.output()[-3000:]


# --- the faults ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    id: str
    name: str
    start: Callable[[Simulator], None]
    end: Callable[[Simulator], None]
    reason: str
    actions: tuple[str, ...] = (REPORT_CHECK, GROUP_CHECK)  # each counts errors with `reason`
    down: frozenset[str] = ALL_REFS  # references whose checks fail during the fault
    extra_recovery: float = 0.0


def faults_on(**changes: object) -> Callable[[Simulator], None]:
    return lambda sim: sim.set_faults(False, **changes)


def faults_off(sim: Simulator) -> None:
    sim.set_faults(reset=True)


FAULTS = [
    Fault("reset", "Sigma down: connections reset", faults_on(down=True), faults_off, "connection"),
    Fault(
        "refused",
        "Sigma down: connections refused",
        Simulator.stop_listening,
        Simulator.start_listening,
        "connection",
    ),
    Fault(
        "latency",
        f"latency 1 s, above the {TIMEOUT} s timeout",
        faults_on(latency_seconds=1.0),
        faults_off,
        "timeout",
    ),
    Fault("500-storm", "500 storm: every status call", faults_on(error_rate=1.0), faults_off, "server_error"),
    Fault(
        "revoked",
        "credentials revoked: 401 on every call",
        faults_on(unauthorized=True),
        faults_off,
        "unauthorized",
        # The first status call's 401 sends the client for a new token (401 too); checks running at the
        # same time may get that held failure without a call of their own.
        actions=(TOKEN,),
        # After a failed token request the client holds that failure this long before asking again.
        extra_recovery=TOKEN_FAILURE_HOLD_SECONDS,
    ),
    Fault(
        "truncated",
        "replies truncated mid-body",
        faults_on(truncated_rate=1.0),
        faults_off,
        "invalid_reply",
        down=BODY_REFS,
    ),
    Fault(
        "stalled-body",
        "reply body that never ends (stalls 1.2 s between pieces)",
        faults_on(slow_body_seconds=60.0),
        faults_off,
        "timeout",
        down=BODY_REFS,
    ),
    Fault(
        "trickling-body",
        "reply body trickling past the deadline (a piece every 60 ms for 3 s)",
        faults_on(slow_body_seconds=3.0),
        faults_off,
        "timeout",
        down=BODY_REFS,
    ),
    Fault(
        "huge",
        f"huge reply: 1 MiB, above max_reply_bytes {MAX_REPLY_BYTES}",
        faults_on(huge_reply_bytes=1024 * 1024),
        faults_off,
        "reply_too_large",
        down=BODY_REFS,
    ),
]


def showing(fault: Fault) -> Callable[[View], bool]:
    """The metrics tell the fault: sigma_up, which references are down, no status series for them."""
    expected_up = 0.0 if fault.down == ALL_REFS else 1.0

    def check(view: View) -> bool:
        down = {ref for ref, value in view.refs_up.items() if value == 0}
        return view.up == expected_up and down == set(fault.down) and not (view.status_refs & fault.down)

    return check


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_fault_is_reported_and_recovered_from(
    rig: Rig, fault: Fault, fault_table: dict[str, dict[str, object]]
) -> None:
    scrape = rig.scrape
    before = scrape()
    fault.start(rig.sim)
    started = time.monotonic()
    shown = scrape.until(showing(fault), 5 * INTERVAL + 2 * TIMEOUT, f"metrics showing {fault.name}")
    detect = time.monotonic() - started
    during = scrape.hold(showing(fault), HOLD_CYCLES, fault.name)
    grown = {
        action: int(during.errors(action, fault.reason) - before.errors(action, fault.reason))
        for action in (TOKEN, REPORT_CHECK, GROUP_CHECK)
    }
    for action in fault.actions:
        assert grown[action] >= 1, (
            f"sigma_api_request_errors_total{{action={action},reason={fault.reason}}}: {grown}"
        )
    assert grown[REPORT_CHECK] + grown[GROUP_CHECK] >= 1, grown
    other_reasons = {
        reason: during.errors(REPORT_CHECK, reason) - before.errors(REPORT_CHECK, reason)
        for reason in (
            "timeout",
            "connection",
            "unauthorized",
            "server_error",
            "invalid_reply",
            "reply_too_large",
        )
        if reason != fault.reason
    }
    assert not any(other_reasons.values()), f"errors counted under other reasons: {other_reasons}"

    fault.end(rig.sim)
    ended = time.monotonic()
    bound = RECOVERY_BOUND + fault.extra_recovery
    scrape.until(View.healthy, bound + 5, f"recovery from {fault.name}")
    recovery = time.monotonic() - ended
    assert recovery < bound, f"recovery from {fault.name} took {recovery:.2f}s (bound {bound:.2f}s)"
    fault_table[fault.name] = {
        "showed": (
            f"sigma_up {shown.up:g}; sigma_reference_up 0 for {len(fault.down)}/{len(ALL_REFS)} references "
            f"and no status series for them; errors_total reason={fault.reason} +{sum(grown.values())} "
            f"({', '.join(f'{a} +{n}' for a, n in grown.items() if n)})"
        ),
        "seconds_to_show": round(detect, 3),
        "recovery_seconds": round(recovery, 3),
        "recovery_bound_seconds": bound,
        "scrapes": scrape.count,
        "slowest_scrape_seconds": round(scrape.slowest, 3),
    }


def test_token_expiring_every_few_calls_is_renewed_without_an_outage(
    rig: Rig, fault_table: dict[str, dict[str, object]]
) -> None:
    # Each access token dies after 7 status calls; a cycle makes 5, so tokens die mid-cycle, every 1-2
    # cycles. The client renews once per 401 and retries: nothing may be seen down.
    scrape = rig.scrape
    before = scrape()
    rig.sim.set_faults(token_expire_every_calls=7)
    rig.sim.expire_tokens()  # the token in use was issued without a call budget
    during = scrape.hold(View.healthy, 8, "all up while tokens expire")
    renewals = during.calls(TOKEN) - before.calls(TOKEN)
    absorbed = sum(
        during.errors(a, "unauthorized") - before.errors(a, "unauthorized")
        for a in (REPORT_CHECK, GROUP_CHECK)
    )
    assert renewals >= 3, f"only {renewals} token renewals in 8 cycles"
    assert absorbed >= renewals - 1, (absorbed, renewals)
    assert during.errors(TOKEN, "unauthorized") == before.errors(TOKEN, "unauthorized")
    rig.sim.set_faults(reset=True)
    fault_table["token expiring every 7 calls"] = {
        "showed": (
            f"no outage: sigma_up 1 and every reference up on all {scrape.count} scrapes; "
            f"{int(renewals)} GENERATE_TOKEN calls, {int(absorbed)} 401s counted as reason=unauthorized and retried"
        ),
        "seconds_to_show": None,
        "recovery_seconds": 0.0,
        "recovery_bound_seconds": RECOVERY_BOUND,
        "scrapes": scrape.count,
        "slowest_scrape_seconds": round(scrape.slowest, 3),
    }


# --- the exporter's own reference files -------------------------------------------------------------------------
FILE_REFS = frozenset({"ref-failed", "grp-mixed"})
INLINE_REFS = frozenset({SAMPLE_REF})
FILE_BODY = "reports: [{reference: ref-failed, labels: {team: lending}}]\ngroups: [grp-mixed]\n"


def gone(view: View) -> bool:
    """The file's references are no longer watched; the inline one still is."""
    return (
        view.healthy(INLINE_REFS)
        and view.get("sigma_references", kind="group") == 0
        and view.get("sigma_config_last_reload_successful") == 1
    )


def kept_with_error(view: View) -> bool:
    """The file's last good references are kept (and still checked); the reload metric says 0."""
    return view.healthy(INLINE_REFS | FILE_REFS) and view.get("sigma_config_last_reload_successful") == 0


def delete(path: Path) -> None:
    path.unlink()


def to_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def to_dangling_symlink(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.with_name("missing-target.yml"))


def to_invalid_yaml(path: Path) -> None:
    path.write_text("reports: [ref-failed\ngroups: {\n")


def to_binary_junk(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x00reports\x00\x81\x82" * 10)


def restore(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        path.rmdir()
    path.write_text(FILE_BODY)


# Tests run as root, for whom chmod 000 does not make a file unreadable; "unreadable" is played by a
# directory or a dangling symlink in the file's place (the glob still matches the name) and by contents
# that cannot be parsed (invalid YAML, binary junk).
FILE_FAULTS: list[tuple[str, Callable[[Path], None], Callable[[View], bool], str]] = [
    ("deleted", delete, gone, "its references are dropped with their series; reload metric stays 1"),
    (
        "replaced by a directory",
        to_directory,
        gone,
        "treated as removed: its references are dropped with their series; reload metric stays 1",
    ),
    (
        "replaced by a dangling symlink",
        to_dangling_symlink,
        gone,
        "treated as removed: its references are dropped with their series; reload metric stays 1",
    ),
    (
        "invalid YAML",
        to_invalid_yaml,
        kept_with_error,
        "last good references kept and checked; sigma_config_last_reload_successful 0",
    ),
    (
        "binary junk (not UTF-8)",
        to_binary_junk,
        kept_with_error,
        "last good references kept and checked; sigma_config_last_reload_successful 0",
    ),
]


def test_reference_files_broken_mid_run(
    exporter_process: Callable[..., ExporterProcess],
    tmp_path: Path,
    fault_table: dict[str, dict[str, object]],
) -> None:
    refs_dir = tmp_path / "refs.d"
    refs_dir.mkdir()
    ref_file = refs_dir / "team.yml"
    ref_file.write_text(FILE_BODY)
    with Simulator(scenario_from(VENDOR_SCENARIO)) as sim:
        body = config_text(
            sim.url,
            reports=[SAMPLE_REF],
            groups=[],
            sigma__timeout_seconds=TIMEOUT,
            poll__interval_seconds=INTERVAL,
            poll__final_recheck_seconds=0,
            references__files=[str(refs_dir / "*.yml")],
        )
        proc = exporter_process(body)
        proc.wait_ready()
        scrape = Scraper(proc)
        full = INLINE_REFS | FILE_REFS
        scrape.until(lambda v: v.healthy(full), 10, "baseline with the file's references")
        for name, breaker, condition, meaning in FILE_FAULTS:
            breaker(ref_file)
            started = time.monotonic()
            scrape.until(condition, 5 * INTERVAL, f"reference file {name}")
            detect = time.monotonic() - started
            scrape.hold(condition, 2, f"reference file {name}")
            restore(ref_file)
            ended = time.monotonic()
            scrape.until(
                lambda v: v.healthy(full) and v.get("sigma_config_last_reload_successful") == 1,
                RECOVERY_BOUND + 5,
                f"recovery from reference file {name}",
            )
            recovery = time.monotonic() - ended
            assert recovery < RECOVERY_BOUND, f"recovery from reference file {name} took {recovery:.2f}s"
            fault_table[f"reference file {name}"] = {
                "showed": meaning,
                "seconds_to_show": round(detect, 3),
                "recovery_seconds": round(recovery, 3),
                "recovery_bound_seconds": RECOVERY_BOUND,
                "scrapes": scrape.count,
                "slowest_scrape_seconds": round(scrape.slowest, 3),
            }
        assert scrape.until(lambda v: v.get("sigma_references", kind="report") == 2, 1, "two reports watched")
        proc.stop()
        assert "Traceback" not in proc.output()


def test_stalled_body_is_a_timeout_and_frees_the_worker() -> None:
    # Regression: urllib3's ReadTimeoutError (a body that stops arriving) escaped the client, killed a
    # worker thread per stalled call and left the reference "up" with its stale status series.
    from tests.support.exporter import make_config, make_poller

    with Simulator(scenario_from(VENDOR_SCENARIO)) as sim:
        config = make_config(
            sim.url,
            ["ref-failed"],
            None,
            sigma__timeout_seconds=0.3,
            poll__interval_seconds=1,
            poll__concurrency=2,
            poll__final_recheck_seconds=0,  # a final reference is checked every cycle
        )
        poller, _ = make_poller(config)
        try:
            assert poller.run_cycle().up
            sim.set_faults(slow_body_seconds=60.0)  # 1.2 s between pieces: a read times out
            for _ in range(3):  # more stalled calls than workers
                state = poller.run_cycle().references[0]
                assert not state.up and state.last_error_reason == "timeout" and state.reports == ()
            sim.set_faults(reset=True)
            snapshot = poller.run_cycle()
            assert snapshot.references[0].up and snapshot.skipped_checks_total == 0
        finally:
            poller.stop()


def test_stop_listening_really_refuses() -> None:
    # The refused-connection fault above relies on it: no keep-alive connection survives stop_listening.
    with Simulator(scenario_from(VENDOR_SCENARIO)) as sim:
        session = requests.Session()
        assert session.get(sim.base_url + "/-/healthy", timeout=2).status_code == 200
        sim.stop_listening()
        with pytest.raises(requests.ConnectionError):
            session.get(sim.base_url + "/-/healthy", timeout=2)
        sim.start_listening()
        assert session.get(sim.base_url + "/-/healthy", timeout=2).status_code == 200
