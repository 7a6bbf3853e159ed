"""Stopping the real process in awkward moments (what test_cli.py, beside this file, does not cover already:
that file stops it with a slow reply in flight, with SIGINT, and starts it with the port taken or Sigma
unreachable).

Each case asserts an exit within SHUTDOWN_LIMIT seconds, exit code 0 and no traceback: no thread (poll
workers blocked in a read, HTTP handlers with idle or half-sent requests) keeps the process alive.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable

import pytest
import requests

from sigma_exporter.simulator import Simulator
from tests.support.configs import config_text
from tests.support.net import wait_for
from tests.support.process import ExporterProcess

SHUTDOWN_LIMIT = 2.0
REFERENCES = ["sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd", "ref-failed", "ref-pending"]
GROUPS = ["grp-sample", "grp-mixed"]
Start = Callable[..., ExporterProcess]


def slow_config(url: str) -> str:
    # Long timeout and interval: a stuck read would last 8 s if nothing cut it short.
    return config_text(
        url,
        reports=REFERENCES,
        groups=GROUPS,
        sigma__timeout_seconds=8,
        poll__interval_seconds=10,
        poll__concurrency=8,
        poll__final_recheck_seconds=0,
    )


def stop_and_time(proc: ExporterProcess, sig: int) -> float:
    started = time.monotonic()
    code = proc.stop(sig, timeout=SHUTDOWN_LIMIT + 5)
    took = time.monotonic() - started
    output = proc.output()
    assert code == 0, (code, output[-3000:])
    assert "Traceback" not in output, output[-3000:]
    assert "msg=stopped" in output, output[-3000:]
    assert took < SHUTDOWN_LIMIT, f"stopping took {took:.2f}s"
    print(f"stopped by {signal.Signals(sig).name} in {took:.3f}s")
    return took


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_while_every_worker_reads_a_body_that_never_ends(
    simulator: Simulator, exporter_process: Start, sig: int
) -> None:
    proc = exporter_process(slow_config(simulator.url))
    proc.wait_ready()
    simulator.set_faults(
        slow_body_seconds=30.0
    )  # a piece every 0.6 s: each read succeeds, the body never ends
    proc.proc.send_signal(signal.SIGHUP)  # a reload wakes the loop: a new cycle starts now
    # Four of the five replies have a body to trickle; all five checks run at once (concurrency 8).
    wait_for(lambda: simulator.state.in_flight >= 4, 10, what="checks stuck in body reads")
    stop_and_time(proc, sig)


def test_stop_before_the_first_cycle_finishes(simulator: Simulator, exporter_process: Start) -> None:
    simulator.set_faults(latency_seconds=6.0)
    proc = exporter_process(slow_config(simulator.url))
    wait_for(lambda: simulator.state.in_flight >= 5, 10, what="the first cycle's checks in flight")
    # Ready means the config is loaded and the restored state published: it does not wait for a cycle.
    assert requests.get(proc.url + "/-/ready", timeout=2).status_code == 200
    assert proc.last_poll() == 0.0  # the first cycle is still in flight
    assert requests.get(proc.url + "/-/healthy", timeout=2).status_code == 200
    stop_and_time(proc, signal.SIGTERM)


def test_stop_with_idle_and_half_sent_http_clients(simulator: Simulator, exporter_process: Start) -> None:
    proc = exporter_process(slow_config(simulator.url))
    proc.wait_ready()
    sockets = []
    try:
        idle = socket.create_connection(("127.0.0.1", proc.port), timeout=5)  # keep-alive, then silence
        idle.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        half = socket.create_connection(("127.0.0.1", proc.port), timeout=5)  # a request that never ends
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        body = socket.create_connection(("127.0.0.1", proc.port), timeout=5)  # a POST body that never comes
        body.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
        silent = socket.create_connection(("127.0.0.1", proc.port), timeout=5)  # connected, nothing sent
        sockets = [idle, half, body, silent]
        # The server still answers others meanwhile.
        assert requests.get(proc.url + "/metrics", timeout=2).status_code == 200
        stop_and_time(proc, signal.SIGTERM)
    finally:
        for sock in sockets:
            sock.close()


def test_stop_while_sigma_refuses_connections(simulator: Simulator, exporter_process: Start) -> None:
    body = config_text(
        simulator.url, reports=REFERENCES, sigma__timeout_seconds=0.3, poll__interval_seconds=0.5
    )
    proc = exporter_process(body)
    proc.wait_ready()
    simulator.stop_listening()
    wait_for(lambda: "sigma_up 0.0" in proc.metrics(), 10, what="sigma_up 0")
    stop_and_time(proc, signal.SIGTERM)
    simulator.start_listening()
