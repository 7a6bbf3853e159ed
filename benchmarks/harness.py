"""Shared plumbing of the benchmarks: child processes on loopback, /proc readings, a raw HTTP scraper.

Every process started here is registered in a `Processes` stack that stops it (SIGTERM, then SIGKILL) on
normal exit, on an exception and on Ctrl-C / SIGTERM. Every wait has a deadline.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import platform
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

# Run as scripts, the benchmarks see their own folder only: the checkout too, for tests.support.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.net import free_port, wait_for

ROOT: Final = Path(__file__).resolve().parent.parent
PYTHON: Final = sys.executable
CLIENT_ID: Final = "8HIG1002H6"
CLIENT_TOKEN: Final = "sample72695bf9-3932-4f60-88b5-2f-2hjd"  # the simulator's built-in sample credentials
API_PREFIX: Final = "/sigma/rest/reports"
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


# -- processes ------------------------------------------------------------------------------------------
@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads), from /proc/PID/stat."""
        text = Path(f"/proc/{self.pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def _status(self, key: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
        raise BenchError(f"{key} missing from /proc/{self.pid}/status")

    def rss_mb(self) -> float:
        return self._status("VmRSS")

    def peak_rss_mb(self) -> float:
        return self._status("VmHWM")

    def output_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{self.output_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Processes:
    """Starts children and guarantees they are stopped (also on exceptions, Ctrl-C and SIGTERM)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._children: list[Child] = []

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> Child:
        log_path = self.workdir / f"{name}-{len(self._children)}.log"
        with log_path.open("wb") as handle:
            proc = subprocess.Popen(
                list(argv),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
            )
        child = Child(name, proc, log_path)
        self._children.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        while self._children:
            self._children.pop().stop()


@contextmanager
def processes(workdir: Path) -> Iterator[Processes]:
    """A `Processes` whose children die with this block; SIGTERM is turned into KeyboardInterrupt."""
    procs = Processes(workdir)

    def on_term(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield procs
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, previous)


# -- simulator ------------------------------------------------------------------------------------------
@dataclass
class Simulator:
    child: Child
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + API_PREFIX

    def _request(self, path: str, document: object | None = None) -> Any:
        data = json.dumps(document).encode() if document is not None else None
        request = urllib.request.Request(self.base + path, data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(request, timeout=10) as reply:  # loopback only
            return json.loads(reply.read())

    def stats(self) -> dict[str, Any]:
        """The simulator's counters without the per-reference ones (cheap enough to ask for often)."""
        result: dict[str, Any] = self._request("/_sim/stats?brief=1")
        return result

    def status_calls(self) -> int:
        calls = self.stats()["calls"]
        return int(calls.get("REPORT_INSTANCE_STATUS_CHECK", 0)) + int(
            calls.get("REPORT_GROUP_INSTANCE_STATUS_CHECK", 0)
        )

    def set_faults(self, **faults: object) -> None:
        self._request("/_sim/faults", faults)

    def set_status(self, reference: str, status: str) -> None:
        self._request("/_sim/set-status", {"reference": reference, "status": status})


def references(count: int, prefix: str = "gen") -> list[str]:
    return [f"{prefix}-r-{i:06d}" for i in range(count)]


def run_simulator(procs: Processes, scenario: dict[str, Any], name: str = "scenario") -> Simulator:
    """`sigma-exporter simulate` with this scenario, once it answers."""
    path = procs.workdir / f"{name}.yml"
    path.write_text(yaml.safe_dump(scenario))
    port = free_port()
    child = procs.start(
        "simulator",
        [
            PYTHON,
            "-m",
            "sigma_exporter",
            "simulate",
            "--listen",
            f"127.0.0.1:{port}",
            "--scenario",
            str(path),
            "--log.level",
            "warning",
        ],
    )
    sim = Simulator(child, port)

    def up() -> bool:
        child.check_alive()
        try:
            sim.stats()
            return True
        except OSError:
            return False

    wait_for(up, 60, what="the simulator")
    return sim


def start_simulator(
    procs: Processes, reports: int, latency: float, final_fraction: float = 0.9, prefix: str = "gen"
) -> Simulator:
    scenario = {
        "generate": {"reports": reports, "groups": 0, "final_fraction": final_fraction, "prefix": prefix},
        "faults": {"latency_seconds": latency},
    }
    sim = run_simulator(procs, scenario, f"scenario-{reports}")
    wait_for(lambda: int(sim.stats()["runs"]) >= reports, 60, what="the simulator's runs")
    return sim


# -- exporter -------------------------------------------------------------------------------------------
@dataclass
class Exporter:
    child: Child
    port: int
    config_path: Path
    last_poll: float = 0.0
    values: dict[str, float] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gauges(self) -> dict[str, float]:
        """The unlabelled sigma_* samples of /metrics (fetched gzip-compressed to keep the scrape cheap)."""
        status, body, _ = http_get("127.0.0.1", self.port, "/metrics", gzip_ok=True, timeout=30)
        if status != 200:
            raise BenchError(f"/metrics answered {status}")
        text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        values = {}
        for match in _UNLABELLED.finditer(text):
            values[match.group(1).decode()] = float(match.group(2))
        self.values = values
        return values

    def wait_cycle_end(self, after: float, timeout: float, every: float = 0.2) -> dict[str, float]:
        """Waits until sigma_last_poll_timestamp_seconds is newer than `after`; returns the gauges."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.child.check_alive()
            try:
                values = self.gauges()
            except (OSError, BenchError):
                values = {}
            if values.get("sigma_last_poll_timestamp_seconds", 0.0) > after:
                self.last_poll = values["sigma_last_poll_timestamp_seconds"]
                return values
            time.sleep(every)
        raise BenchError(f"no poll cycle ended within {timeout:g}s")


_UNLABELLED: Final = re.compile(rb"^(sigma_[a-z_]+) ([0-9.e+-]+)$", re.MULTILINE)


def exporter_config(
    sim_url: str,
    refs: Sequence[str],
    *,
    interval: float,
    concurrency: int,
    final_recheck: float,
    timeout: float = 5.0,
) -> dict[str, Any]:
    return {
        "sigma": {
            "url": sim_url,
            "auth": {"type": "apikey", "client_id": CLIENT_ID, "client_token": CLIENT_TOKEN},
            "timeout_seconds": min(timeout, interval),
        },
        "poll": {
            "interval_seconds": interval,
            "concurrency": concurrency,
            "final_recheck_seconds": final_recheck,
        },
        "references": {"reports": list(refs)},
    }


def start_exporter(
    procs: Processes,
    config: dict[str, Any],
    name: str = "exporter",
    env: dict[str, str] | None = None,
    python: str = PYTHON,
) -> Exporter:
    """An exporter on a free port; `python` runs another checkout's exporter (a "before" column)."""
    port = free_port()
    path = procs.workdir / f"{name}-{port}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    child = procs.start(
        name,
        [
            python,
            "-m",
            "sigma_exporter",
            "serve",
            "--config.file",
            str(path),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--storage.path",
            str(path.parent / f"state-{port}"),
        ],
        env=env,
        cwd=Path(python).absolute().parents[2] if python != PYTHON else ROOT,  # a checkout's .venv/bin/python
    )
    exporter = Exporter(child, port, path)

    def healthy() -> bool:
        child.check_alive()
        try:
            return http_get("127.0.0.1", port, "/-/healthy", timeout=2)[0] == 200
        except OSError:
            return False

    wait_for(healthy, 60, what=f"{name} to listen")
    return exporter


# -- a raw HTTP/1.1 client --------------------------------------------------------------------------------
class RawClient:
    """One keep-alive connection, a GET written in one send, the body read with recv_into: the client side
    adds as little as Python allows to the measured latency. Reconnects when the server closes."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray(1 << 16)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return sock

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, int, dict[str, str]]:
        """(status, body bytes, headers). The body is counted, not kept."""
        sock = self._sock or self._connect()
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the reply head")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        reply_headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            reply_headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        length = reply_headers.get("content-length")
        got = len(rest)
        view = memoryview(self._buffer)
        if length is not None:
            want = int(length)
            while got < want:
                n = sock.recv_into(view)
                if not n:
                    raise ConnectionError("connection closed in the middle of the body")
                got += n
        else:
            while n := sock.recv_into(view):
                got += n
        if status_line.startswith("HTTP/1.0") or reply_headers.get("connection", "").lower() == "close":
            self.close()
        return status, got, reply_headers


def http_get(
    host: str, port: int, path: str, *, gzip_ok: bool = False, timeout: float = 10.0
) -> tuple[int, bytes, dict[str, str]]:
    """A one-off GET that keeps the body (for reading values, not for timing)."""
    request = urllib.request.Request(f"http://{host}:{port}{path}")
    if gzip_ok:
        request.add_header("Accept-Encoding", "gzip")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # loopback only
            return reply.status, reply.read(), {k.lower(): v for k, v in reply.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), {}


# -- scrape load ------------------------------------------------------------------------------------------
PROMETHEUS_ACCEPT: Final = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


@dataclass
class ScrapeResult:
    clients: int
    gzip: bool
    latencies: list[float]
    errors: int
    bytes_per_scrape: int
    seconds: float

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


class _Conn:
    """One scraper's keep-alive connection, driven by `scrape_load`'s event loop."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port = port
        self.request = request
        self.sock: socket.socket | None = None
        self.head = b""
        self.want = -1  # body bytes still expected; -1 while reading the head, -2 until EOF
        self.status = 0
        self.size = 0
        self.began = 0.0
        self.keep_alive = True
        self.done = 0

    def send(self) -> socket.socket:
        self.began = time.perf_counter()  # a new connection's set-up counts, as it does for a scraper
        if self.sock is None:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self.sock = sock
        self.head, self.want, self.size = b"", -1, 0
        self.sock.sendall(self.request)  # a few hundred bytes: fits the empty send buffer
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def feed(self, data: bytes | memoryview) -> bool:
        """Takes received bytes; True when the reply is complete."""
        if self.want == -1:
            self.head += bytes(data)
            if b"\r\n\r\n" not in self.head:
                return False
            head, _, rest = self.head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            self.status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.keep_alive = not lines[0].startswith("HTTP/1.0") and headers.get("connection") != "close"
            length = headers.get("content-length")
            self.want = int(length) if length is not None else -2
            self.size = 0
            data = rest
        self.size += len(data)
        return self.want >= 0 and self.size >= self.want


def scrape_load(
    port: int,
    clients: int,
    *,
    gzip_ok: bool,
    duration: float,
    max_per_client: int,
    prometheus_headers: bool = True,
    on_sample: Callable[[float], None] | None = None,
    timeout: float = 30.0,
) -> ScrapeResult:
    """`clients` scrapers, each on its own keep-alive connection, scrape /metrics back to back until
    `duration` seconds have passed or each made `max_per_client` scrapes. One thread drives every
    connection with non-blocking sockets (`selectors`), so the client adds as little CPU and as few thread
    switches as Python allows to what it measures: a request goes out in one send, a reply is counted, not
    kept. A scrape still in flight at the deadline is waited for (up to `timeout`)."""
    headers = {"Accept": PROMETHEUS_ACCEPT} if prometheus_headers else {}
    if gzip_ok:
        headers["Accept-Encoding"] = "gzip"
    lines = ["GET /metrics HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    selector = selectors.DefaultSelector()
    conns = [_Conn(port, request) for _ in range(clients)]
    start = time.monotonic()
    deadline = start + duration
    hard_deadline = deadline + timeout
    try:
        for conn in conns:
            selector.register(conn.send(), selectors.EVENT_READ, conn)
        while selector.get_map() and time.monotonic() < hard_deadline:
            for key, _ in selector.select(timeout=1.0):
                conn = key.data
                assert isinstance(conn, _Conn)
                sock = conn.sock
                assert sock is not None
                finished = False
                failed = False
                try:
                    n = sock.recv_into(view)
                except BlockingIOError:
                    continue
                except OSError:
                    failed = True
                else:
                    if n == 0:
                        finished = conn.want == -2  # a reply delimited by the end of the connection
                        failed = not finished
                        conn.keep_alive = False
                    else:
                        finished = conn.feed(view[:n])
                if not finished and not failed:
                    continue
                selector.unregister(sock)
                if failed:
                    errors += 1
                    conn.close()
                else:
                    took = time.perf_counter() - conn.began
                    if conn.status == 200:
                        latencies.append(took)
                        sizes.append(conn.size)
                        if on_sample is not None:
                            on_sample(took)
                    else:
                        errors += 1
                    if not conn.keep_alive:
                        conn.close()
                conn.done += 1
                if conn.done < max_per_client and time.monotonic() < deadline:
                    try:
                        selector.register(conn.send(), selectors.EVENT_READ, conn)
                    except OSError:
                        errors += 1
                        conn.close()
    finally:
        errors += len(selector.get_map())  # still in flight at the hard deadline
        selector.close()
        for conn in conns:
            conn.close()
    return ScrapeResult(
        clients=clients,
        gzip=gzip_ok,
        latencies=latencies,
        errors=errors,
        bytes_per_scrape=int(sum(sizes) / len(sizes)) if sizes else 0,
        seconds=time.monotonic() - start,
    )


def fmt_ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def fmt_bytes(size: float) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MiB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.0f} KiB"
    return f"{size:.0f} B"
