"""The HTTP surface of a real `sigma-exporter serve` process: slow and half-sent requests, malformed raw
requests, a fuzz of raw requests, and an honest /-/reload."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.net import wait_for
from tests.support.process import ExporterProcess
from tests.support.scenarios import SAMPLE_REF

Start = Callable[..., ExporterProcess]
HALF_SENT = 1000


def threads_of(proc: ExporterProcess) -> int:
    for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data` and read the answer: until the server closes, or briefly after the first bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        chunks: list[bytes] = []
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                sock.settimeout(0.3)
        return b"".join(chunks)


def status_of(reply: bytes) -> int | None:
    if not reply.startswith(b"HTTP/"):  # HTTP/0.9 requests get an HTTP/0.9 status line
        return None
    return int(reply.split(b" ", 2)[1])


@pytest.fixture
def exporter(simulator: Simulator, exporter_process: Start) -> ExporterProcess:
    proc = exporter_process(config_text(simulator.url, reports=[SAMPLE_REF]), "--web.read-timeout", "2s")
    proc.wait_ready()
    return proc


def test_slowloris_neither_grows_threads_nor_blocks_scrapes(exporter: ExporterProcess) -> None:
    before = threads_of(exporter)
    # The live part (sigma_web_connections among it) is rendered at most once a second: the fixture's
    # last scrape must be over a second old when the connections are counted.
    live_part_stale_at = time.monotonic() + 1.0
    held: list[socket.socket] = []
    try:
        for i in range(HALF_SENT):
            sock = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow-%d: " % i)  # never finished
            held.append(sock)
        time.sleep(max(0.0, live_part_stale_at - time.monotonic()))
        started = time.monotonic()
        answer = requests.get(exporter.url + "/metrics", timeout=5)
        took = time.monotonic() - started
        assert answer.status_code == 200 and "sigma_up" in answer.text
        assert took < 1.0, f"/metrics took {took:.2f}s beside 1,000 half-sent requests"
        assert threads_of(exporter) <= before + 4, "threads must not grow with connections"
        open_now = [line for line in answer.text.splitlines() if line.startswith("sigma_web_connections ")]
        assert float(open_now[0].split()[1]) >= HALF_SENT  # the half-sent ones are open...
        # ...and are all closed by the 2 s read timeout.
        for sock in held:
            sock.settimeout(10)
        closed_at = []
        for sock in held:
            assert sock.recv(1) == b"", "the server closes a request that never completes"
            closed_at.append(time.monotonic())
        assert max(closed_at) - started < 8
    finally:
        for sock in held:
            sock.close()
    metrics = wait_for(
        lambda: (
            (text := exporter.metrics())
            and f'sigma_web_requests_rejected_total{{reason="read_timeout"}} {HALF_SENT}.0' in text
            and text
        ),
        10,
        what="the read timeouts counted",
    )
    open_after = [line for line in metrics.splitlines() if line.startswith("sigma_web_connections ")]
    assert float(open_after[0].split()[1]) <= 3  # only the scrapes' own


# (raw request, expected status; None: the connection is closed with no answer)
CORPUS: list[tuple[str, bytes, int | None]] = [
    ("ok", b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n", 200),
    ("http/1.0", b"GET /-/healthy HTTP/1.0\r\n\r\n", 200),
    ("content-length abc", b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    ("content-length negative", b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (
        "content-length huge number",
        b"POST /-/reload HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        400,
    ),
    ("content-length twice", b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    ("content-length with spaces inside", b"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400),
    (
        "chunked and content-length",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("bad chunk size", b"POST /-/reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", 400),
    ("unknown transfer-encoding", b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (
        "body over 64 KiB",
        b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n" + b"a" * 70000,
        413,
    ),
    (
        "chunked body over 64 KiB",
        b"POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n11170\r\n"
        + b"a" * 70000
        + b"\r\n0\r\n\r\n",
        413,
    ),
    ("NUL in the path", b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: x\x00y\r\n\r\n", 400),
    ("NUL in a header name", b"GET / HTTP/1.1\r\nHo\x00st: x\r\n\r\n", 400),
    ("control character in a header", b"GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n", 400),
    ("header without colon", b"GET / HTTP/1.1\r\nnocolon\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("obsolete line folding", b"GET / HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n", 400),
    ("header line too long", b"GET / HTTP/1.1\r\nX-A: " + b"a" * 10000 + b"\r\n\r\n", 400),
    (
        "too many headers",
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
        400,
    ),
    ("request line too long", b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n", 400),
    ("no version (HTTP/0.9)", b"GET /\r\n\r\n", 505),
    ("HTTP/0.9", b"GET / HTTP/0.9\r\n\r\n", 505),
    ("HTTP/1.2", b"GET / HTTP/1.2\r\n\r\n", 505),
    ("HTTP/2.0", b"GET / HTTP/2.0\r\n\r\n", 505),
    ("HTTP/3.0", b"GET / HTTP/3.0\r\n\r\n", 505),
    ("lower-case version", b"GET / http/1.1\r\n\r\n", 400),
    ("garbage version", b"GET / HTTX/1.1\r\n\r\n", 400),
    ("two spaces in the request line", b"GET  / HTTP/1.1\r\n\r\n", 400),
    ("method with a slash", b"G/T / HTTP/1.1\r\n\r\n", 400),
    ("empty method", b" / HTTP/1.1\r\n\r\n", 400),
    ("bare LF", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    (
        "TLS ClientHello on the plain port",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
        400,
    ),
    ("binary", bytes(range(256)) + b"\r\n\r\n", 400),
    ("unknown method", b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("POST /metrics", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    ("GET /-/reload", b"GET /-/reload HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    ("unknown path", b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("percent-encoded NUL", b"GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("absolute URI", b"GET http://x/-/healthy HTTP/1.1\r\nHost: x\r\n\r\n", 200),
]


def test_malformed_requests_get_their_status_and_the_server_stays_healthy(exporter: ExporterProcess) -> None:
    assert len(CORPUS) >= 30
    seen = {}
    for name, data, _expected in CORPUS:
        reply = raw(exporter.port, data)
        seen[name] = status_of(reply)
        assert requests.get(exporter.url + "/-/healthy", timeout=5).status_code == 200, name
    mismatched = {name: (seen[name], expected) for name, _, expected in CORPUS if seen[name] != expected}
    assert not mismatched, f"(got, expected): {mismatched}"
    log = exporter.output()
    assert "Traceback" not in log
    metrics = exporter.metrics()
    assert 'sigma_web_requests_rejected_total{reason="malformed"}' in metrics
    assert 'sigma_web_requests_rejected_total{reason="http_version"} 5.0' in metrics


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    from tests.support.scenarios import VENDOR_SCENARIO, scenario_from

    sim = Simulator(scenario_from(VENDOR_SCENARIO)).start()
    config = tmp_path_factory.mktemp("fuzz") / "config.yml"
    config.write_text(config_text(sim.url, reports=[SAMPLE_REF]))
    try:
        with ExporterProcess(config) as proc:
            yield proc
    finally:
        sim.stop()


token = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=12,
)
paths = st.one_of(
    st.sampled_from(["/", "/metrics", "/-/healthy", "/-/ready", "/-/reload", "/api/v1/runs", "/nope"]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40).map(lambda p: "/" + p),
)
requests_raw = st.builds(
    lambda method, path, version, headers, body, cl: (
        f"{method} {path} {version}\r\n".encode()
        + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers)
        + (
            f"Content-Length: {cl if cl is not None else len(body)}\r\n".encode()
            if body or cl is not None
            else b""
        )
        + b"\r\n"
        + body
    ),
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "FOO"]),
    paths,
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2", "HTTP/1.1x"]),
    st.lists(
        st.tuples(token, st.text(max_size=30).map(lambda v: v.replace("\r", "").replace("\n", ""))),
        max_size=6,
    ),
    st.binary(max_size=300),
    st.one_of(st.none(), st.sampled_from(["-1", "abc", "0", "5", "1e3", "99999999"])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=requests_raw)
def test_fuzzed_raw_requests_never_get_a_5xx_except_505(fuzz_target: ExporterProcess, data: bytes) -> None:
    # Content-Length larger than the body: the read timeout would close it; do not wait 30 s for that.
    reply = raw(fuzz_target.port, data, timeout=2.0)
    status = status_of(reply)
    assert status is None or status < 500 or status == 505, (data, reply[:200])
    assert "Traceback" not in fuzz_target.output()


def test_reload_with_a_broken_web_config(
    simulator: Simulator, exporter_process: Start, tmp_path: Path
) -> None:
    web = tmp_path / "web.yml"
    web.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    proc = exporter_process(config_text(simulator.url, reports=[SAMPLE_REF]), "--web.config.file", str(web))
    proc.wait_ready()
    assert requests.get(proc.url + "/-/healthy", timeout=5).headers["X-Frame-Options"] == "deny"

    web.write_text("http_server_config:\n  headers:\n    X-Frame-Options: allow\n")
    bad = requests.post(proc.url + "/-/reload", timeout=10)
    assert bad.status_code == 500
    assert f"web config {web}: failed" in bad.text
    assert "http_server_config.headers.X-Frame-Options" in bad.text and "expected one of" in bad.text
    assert "config " in bad.text and ": reloaded" in bad.text  # the main config was fine and applied
    assert requests.get(proc.url + "/-/healthy", timeout=5).headers["X-Frame-Options"] == "deny"
    metrics = proc.metrics()
    assert "sigma_web_config_last_reload_successful 0.0" in metrics or wait_for(
        lambda: "sigma_web_config_last_reload_successful 0.0" in proc.metrics(), 5
    )
    assert "sigma_web_config_reload_failures_total 1.0" in proc.metrics()
    assert "sigma_config_last_reload_successful 1.0" in metrics

    web.write_text("http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n")
    good = requests.post(proc.url + "/-/reload", timeout=10)
    assert good.status_code == 200 and good.text.startswith("Reloaded.")
    assert requests.get(proc.url + "/-/healthy", timeout=5).headers["X-Frame-Options"] == "sameorigin"
    wait_for(lambda: "sigma_web_config_last_reload_successful 1.0" in proc.metrics(), 5)  # live part: 1 s


def test_check_config_validates_the_web_config(simulator: Simulator, tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "c.yml"
    config.write_text(config_text(simulator.url, reports=[SAMPLE_REF]))
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  alice: hunter2\n")
    args = [sys.executable, "-m", "sigma_exporter", "check-config", "--config.file", str(config)]
    bad = subprocess.run(
        [*args, "--web.config.file", str(web)], capture_output=True, text=True, timeout=30, check=False
    )
    assert bad.returncode == 1
    assert f"{web}: basic_auth_users.alice: not a bcrypt hash" in bad.stderr
    assert "hunter2" not in bad.stderr + bad.stdout
    web.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    good = subprocess.run(
        [*args, "--web.config.file", str(web)], capture_output=True, text=True, timeout=30, check=False
    )
    assert good.returncode == 0, good.stderr
    assert f"web config {web} OK" in good.stdout
