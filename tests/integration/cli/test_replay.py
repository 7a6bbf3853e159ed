"""Recorded exchanges (tests/recorded/, the `--record` format) and `simulate --replay`: a recording replayed
gives the exporter the same metrics as the Sigma it was recorded from. (The recordings as parser cases:
tests/unit/sigma/test_recorded.py.)"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.exporter import normalise
from tests.support.net import free_port
from tests.support.paths import RECORDED_DIR
from tests.support.process import EXPORTER, run_command
from tests.support.scenarios import SAMPLE_REF, VENDOR_SCENARIO, scenario_from

GROUP_REF = "grp-2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd"


@contextlib.contextmanager
def replaying(directory: Path) -> Iterator[str]:
    """`sigma-exporter simulate --replay DIR` on a free port, once it listens; its sigma.url."""
    port = free_port()
    proc = subprocess.Popen(
        [*EXPORTER, "simulate", "--listen", f"127.0.0.1:{port}", "--replay", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = proc.stdout
    assert out is not None
    try:
        first = out.readline()  # printed once it listens (or the error it exits with)
        assert "Sigma replay serving" in first and proc.poll() is None, first
        yield f"http://127.0.0.1:{port}/sigma/rest/reports"
    finally:
        proc.terminate()
        proc.wait(10)


def once(tmp_path: Path, url: str, name: str, *args: str) -> str:
    config = tmp_path / f"{name}.yml"
    config.write_text(config_text(url, reports=[SAMPLE_REF], groups=[GROUP_REF]))
    done = run_command("once", config, *args, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def stable(exposition: str) -> list[str]:
    """The lines that do not depend on time or on this process."""
    return [
        line
        for line in normalise(exposition).splitlines()
        if not line.startswith(("#", "process_", "python_", "sigma_exporter_build_info"))
        and "<volatile>" not in line
        and "_seconds_bucket" not in line
        and "_seconds_sum" not in line
        and "_seconds_count" not in line
    ]


def test_a_replayed_recording_reproduces_the_same_metrics(tmp_path: Path) -> None:
    record = tmp_path / "rec"
    with Simulator(scenario_from(VENDOR_SCENARIO)) as sim:
        live = once(tmp_path, sim.url, "live", "--record", str(record))
    assert len(list(record.glob("*.json"))) == 3  # the token and two status checks
    with replaying(record) as url:
        replayed = once(tmp_path, url, "replayed")
    assert stable(replayed) == stable(live)
    assert 'sigma_report_status{reference="sample2djj' in live and "sigma_up 1.0" in replayed


def test_the_vendor_samples_replay_as_the_statuses_they_show(tmp_path: Path) -> None:
    with replaying(RECORDED_DIR / "vendor-samples") as url:
        text = once(tmp_path, url, "vendor")
    assert "sigma_up 1.0" in text
    for reference in (SAMPLE_REF, GROUP_REF):
        assert f'reference="{reference}",report_group_id=' in text
    assert 'status="NOTIFIED"} 1.0' in text
