"""The real `sigma-exporter` process: HTTP endpoints, reloads, signals, `once`, promtool."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import requests

from sigma_exporter.simulator import Simulator
from tests.support.binaries import require_binary
from tests.support.configs import config_text
from tests.support.net import free_port, wait_for
from tests.support.process import EXPORTER, ExporterProcess
from tests.support.scenarios import SAMPLE_REF

Start = Callable[..., ExporterProcess]


def vendor_config(url: str, **extra: object) -> str:
    return config_text(
        url,
        reports=[SAMPLE_REF, {"reference": "ref-failed", "labels": {"team": "lending"}}],
        groups=["grp-sample"],
        **extra,
    )


def test_endpoints(simulator: Simulator, exporter_process: Start) -> None:
    proc = exporter_process(vendor_config(simulator.url))
    proc.wait_ready()
    base = proc.url
    text = requests.get(base + "/metrics", timeout=5)
    assert text.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'status="NOTIFIED"} 1.0' in text.text and "process_resident_memory_bytes" in text.text

    om = requests.get(
        base + "/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"}, timeout=5
    )
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n") and om.text.count("# EOF") == 1

    raw = requests.get(base + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    assert raw.headers["Content-Encoding"] == "gzip"
    compressed = raw.raw.read()
    body = gzip.decompress(compressed)
    assert b"sigma_up 1.0" in body and b"process_cpu_seconds_total" in body
    first_member = zlib.decompressobj(31)  # what curl --compressed reads: one gzip member, the whole body
    assert first_member.decompress(compressed) == body and first_member.unused_data == b""

    assert requests.get(base + "/-/healthy", timeout=5).status_code == 200
    assert requests.get(base + "/-/ready", timeout=5).status_code == 200
    page = requests.get(base + "/", timeout=5)
    assert page.headers["Content-Type"].startswith("text/html") and SAMPLE_REF in page.text
    assert requests.get(base + "/nope", timeout=5).status_code == 404
    assert requests.get(base + "/-/reload", timeout=5).status_code == 405
    head = requests.head(base + "/metrics", timeout=5)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 1000 and head.content == b""


def test_promtool_check_metrics(simulator: Simulator, exporter_process: Start) -> None:
    promtool = require_binary("promtool")
    proc = exporter_process(vendor_config(simulator.url))
    proc.wait_ready()
    body = requests.get(proc.url + "/metrics", headers={"Accept": "text/plain"}, timeout=5).content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.strip() == b"" and result.stderr.strip() == b"", (result.stdout, result.stderr)


def test_openmetrics_exposition_parses_strictly(simulator: Simulator, exporter_process: Start) -> None:
    # promtool reads only the classic text format; OpenMetrics goes through the strict reference parser.
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    proc = exporter_process(vendor_config(simulator.url))
    proc.wait_ready()
    body = requests.get(
        proc.url + "/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"}, timeout=5
    ).text
    names = {family.name for family in text_string_to_metric_families(body)}  # type: ignore[no-untyped-call]
    assert {
        "sigma_report_status",
        "sigma_api_requests",
        "sigma_api_request_duration_seconds",
        "sigma_up",
    } <= names


def test_reload_over_http_and_sighup(simulator: Simulator, exporter_process: Start, tmp_path: Path) -> None:
    proc = exporter_process(vendor_config(simulator.url))
    proc.wait_ready()
    config = Path(proc.proc.args[proc.proc.args.index("--config.file") + 1])  # type: ignore[union-attr,index,arg-type]
    assert 'reference="ref-failed"' in proc.metrics()

    config.write_text("sigma: {url: 'not a url'}\n")
    bad = requests.post(proc.url + "/-/reload", timeout=10)
    assert bad.status_code == 500 and "sigma.url" in bad.text
    assert "sigma_config_last_reload_successful 0.0" in proc.metrics()
    assert 'reference="ref-failed"' in proc.metrics()  # the last good config stays

    config.write_text(config_text(simulator.url, reports=[SAMPLE_REF]))
    good = requests.post(proc.url + "/-/reload", timeout=10)
    assert good.status_code == 200
    wait_for(
        lambda: 'reference="ref-failed"' not in proc.metrics(), 10, what="series of removed reference gone"
    )
    assert "sigma_config_last_reload_successful 1.0" in proc.metrics()

    config.write_text(config_text(simulator.url, reports=[SAMPLE_REF, "ref-pending"]))
    proc.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: 'reference="ref-pending"' in proc.metrics(), 10, what="SIGHUP reload")


def test_reference_files_are_reread_when_they_change(
    simulator: Simulator, exporter_process: Start, tmp_path: Path
) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "a.yml").write_text(f"reports: [{SAMPLE_REF}]\n")
    body = config_text(
        simulator.url,
        reports=[],
        references__files=[str(refs / "*.yml")],
        poll__interval_seconds=0.5,
        sigma__timeout_seconds=0.5,
    )
    proc = exporter_process(body)
    proc.wait_ready()
    assert f'reference="{SAMPLE_REF}"' in proc.metrics()
    (refs / "b.yml").write_text("groups: [{reference: grp-sample, labels: {team: finance}}]\n")
    wait_for(lambda: 'reference="grp-sample"' in proc.metrics(), 10, what="new reference file picked up")
    (refs / "b.yml").write_text("groups: [{reference: grp-sample, labels: {team: [broken]}}]\n")
    wait_for(
        lambda: "sigma_config_last_reload_successful 0.0" in proc.metrics(), 10, what="bad file reported"
    )
    assert 'reference="grp-sample"' in proc.metrics()  # last good contents kept
    (refs / "b.yml").unlink()
    wait_for(
        lambda: 'reference="grp-sample"' not in proc.metrics(), 10, what="removed file's references gone"
    )


def test_sigterm_stops_within_two_seconds_with_calls_in_flight(
    simulator: Simulator, exporter_process: Start
) -> None:
    proc = exporter_process(vendor_config(simulator.url, sigma__timeout_seconds=4))
    proc.wait_ready()
    simulator.set_faults(latency_seconds=3.0)
    proc.proc.send_signal(signal.SIGHUP)  # wakes the loop: a cycle starts and blocks on Sigma
    time.sleep(0.3)
    started = time.monotonic()
    code = proc.stop(signal.SIGTERM, timeout=5)
    assert time.monotonic() - started < 2.0
    assert code == 0
    assert "Traceback" not in proc.output()


def test_sigint_stops_too(simulator: Simulator, exporter_process: Start) -> None:
    proc = exporter_process(vendor_config(simulator.url))
    proc.wait_ready()
    started = time.monotonic()
    assert proc.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 2.0


def test_port_taken_fails_clearly(simulator: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(vendor_config(simulator.url))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*EXPORTER, "serve", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


def test_identities_link_to_their_page_under_the_external_url(
    simulator: Simulator, exporter_process: Start, tmp_path: Path
) -> None:
    def urls(proc: ExporterProcess) -> set[str]:
        info = [line for line in proc.metrics().splitlines() if line.startswith("sigma_report_info{")]
        assert info
        return {line.split('report_url="', 1)[1].split('"', 1)[0] for line in info}

    proxied = exporter_process(
        vendor_config(simulator.url), env={"SIGMA_EXPORTER_WEB_EXTERNAL_URL": "https://gw.example.com/sigma"}
    )
    # A state store of its own: one shard's identities have one writer, and these are two exporters.
    default = exporter_process(vendor_config(simulator.url), "--storage.path", str(tmp_path / "default"))
    proxied.wait_ready()
    default.wait_ready()
    assert "https://gw.example.com/sigma/report?report_group_id=&report_id=rpt-failed" in urls(proxied)
    assert f"http://127.0.0.1:{default.port}/report?report_group_id=&report_id=rpt-failed" in urls(default)
    assert "external_url=https://gw.example.com/sigma/" in proxied.output()


def test_a_bad_external_url_fails_at_startup_naming_the_flag(simulator: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(vendor_config(simulator.url))
    for args, env in (
        (["--web.external-url", "gw.example.com/sigma"], {}),
        ([], {"SIGMA_EXPORTER_WEB_EXTERNAL_URL": "gw.example.com/sigma"}),
    ):
        result = subprocess.run(
            [*EXPORTER, "serve", "--config.file", str(config), "--web.listen-address", "127.0.0.1:0", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, **env},
        )
        assert result.returncode == 1
        assert "error: --web.external-url 'gw.example.com/sigma': not an http or https URL" in result.stderr


def test_startup_with_sigma_unreachable_still_serves(exporter_process: Start) -> None:
    dead = f"http://127.0.0.1:{free_port()}/sigma/rest/reports"
    proc = exporter_process(vendor_config(dead))
    proc.wait_ready()
    text = proc.metrics()
    assert "sigma_up 0.0" in text
    assert 'sigma_reference_up{kind="report",reference="ref-failed"} 0.0' in text
    assert "sigma_report_status{" not in text
    assert requests.get(proc.url + "/-/healthy", timeout=5).status_code == 200


def test_bad_config_fails_at_startup(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("sigma: {url: http://x}\nreferences: {reports: [a]}\n")
    result = subprocess.run(
        [*EXPORTER, "serve", "--config.file", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "sigma.auth.client_id: is required for type apikey" in result.stderr


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXPORTER, "once", "--config.file", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_once_exit_codes(simulator: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(vendor_config(simulator.url))
    result = run_once(config)
    assert result.returncode == 0, result.stderr
    assert "sigma_up 1.0" in result.stdout and 'status="NOTIFIED"} 1.0' in result.stdout
    config.write_text(vendor_config(f"http://127.0.0.1:{free_port()}/sigma/rest/reports"))
    result = run_once(config)
    assert result.returncode == 1
    assert "sigma_up 0.0" in result.stdout
    assert "check failed" in result.stderr and "reason=connection" in result.stderr


def test_json_logs_and_no_secret_at_debug(simulator: Simulator, exporter_process: Start) -> None:
    proc = exporter_process(vendor_config(simulator.url), "--log.level", "debug", "--log.format", "json")
    proc.wait_ready()
    proc.stop()
    import json

    lines = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    assert any(line["msg"] == "poll cycle finished" for line in lines)
    assert any(line.get("reference") == SAMPLE_REF for line in lines)
    assert "sample72695bf9" not in proc.output()


def test_once_keeps_no_state_and_writes_nothing(simulator: Simulator, tmp_path: Path) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    config = tmp_path / "c.yml"
    config.write_text(vendor_config(simulator.url))
    env = {k: v for k, v in os.environ.items() if k != "SIGMA_EXPORTER_STORAGE_PATH"}
    result = subprocess.run(
        [*EXPORTER, "once", "--config.file", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=workdir,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "sigma_state_up 1.0" in result.stdout
    assert list(workdir.iterdir()) == []  # no data/ with a SQLite file in the working directory
    assert "memory:" not in result.stderr  # and no warning about a store it does not need
