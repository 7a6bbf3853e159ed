"""The Sigma client over loopback against the simulator: parameters, auth, tokens, limits, secrets."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from sigma_exporter.config.load import Config, parse_config
from sigma_exporter.sigma import errors as e
from sigma_exporter.sigma.client import SigmaClient
from sigma_exporter.sigma.stats import ApiStats
from sigma_exporter.simulator import Simulator
from tests.support.net import free_port
from tests.support.scenarios import CLIENT_ID, CLIENT_TOKEN

REPORT = "sample2djj-6c394d0e-9802-49ae-bdd3-9ccaed431ecd"


def make_config(url: str, auth: dict[str, Any] | None = None, **sigma: Any) -> Config:
    return parse_config(
        {
            "sigma": {
                "url": url,
                "auth": auth or {"type": "apikey", "client_id": CLIENT_ID, "client_token": CLIENT_TOKEN},
                "timeout_seconds": sigma.pop("timeout_seconds", 2),
                **sigma,
            },
            "references": {"reports": [REPORT]},
        },
        "test",
        environ={},
    )


def client_for(url: str, auth: dict[str, Any] | None = None, **sigma: Any) -> tuple[SigmaClient, ApiStats]:
    stats = ApiStats()
    return SigmaClient(make_config(url, auth, **sigma).sigma, stats, pool_size=8), stats


@pytest.mark.parametrize("params_in", ["body", "query"])
def test_parameter_styles(simulator: Simulator, params_in: str) -> None:
    client, _ = client_for(simulator.url, params_in=params_in)
    assert client.check_report(REPORT).report.status == "NOTIFIED"
    sources = simulator.stats()["param_sources"]
    assert isinstance(sources, dict)
    assert sources.get(params_in) == 2  # the token request and the status check
    assert set(sources) == {params_in}


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "apikey", "client_id": CLIENT_ID, "client_token": CLIENT_TOKEN},
        {"type": "basic", "username": "sigma", "password": "sigma-password"},
        {"type": "token", "token": "fixed-access-token"},
    ],
    ids=["apikey", "basic", "fixed-token"],
)
def test_auth_types(simulator: Simulator, auth: dict[str, Any]) -> None:
    client, _ = client_for(simulator.url, auth)
    group = client.check_group("grp-mixed")
    assert sorted(r.status for r in group.reports) == ["FAILED", "GENERATED", "PUBLISHED"]
    issued = simulator.stats()["tokens_issued"]
    assert issued == (0 if auth["type"] == "token" else 1)


def test_wrong_credentials_are_unauthorized_without_retry_loop(simulator: Simulator) -> None:
    client, stats = client_for(simulator.url, {"type": "basic", "username": "sigma", "password": "wrong"})
    with pytest.raises(e.UnauthorizedError):
        client.check_report(REPORT)
    assert simulator.stats()["calls"] == {"GENERATE_TOKEN": 1}
    assert stats.freeze().errors == {("GENERATE_TOKEN", "unauthorized"): 1}


def test_token_expiry_mid_run_renews_once_per_expiry(simulator: Simulator) -> None:
    simulator.set_faults(token_expire_every_calls=3)
    client, stats = client_for(simulator.url)
    for _ in range(10):
        assert client.check_report(REPORT).report.status == "NOTIFIED"
    frozen = stats.freeze()
    renewals = frozen.errors.get(("REPORT_INSTANCE_STATUS_CHECK", "unauthorized"), 0)
    assert renewals == 3  # calls 4, 7 and 10 met a dead token
    assert simulator.stats()["tokens_issued"] == 1 + renewals


def test_fixed_token_rejected_is_final(simulator: Simulator) -> None:
    client, _ = client_for(simulator.url, {"type": "token", "token": "not-a-valid-token"})
    with pytest.raises(e.UnauthorizedError):
        client.check_report(REPORT)
    assert simulator.stats()["calls"] == {"REPORT_INSTANCE_STATUS_CHECK": 1}


def test_concurrent_callers_share_one_token_and_one_renewal(simulator: Simulator) -> None:
    simulator.set_faults(latency_seconds=0.05)
    client, _ = client_for(simulator.url)
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def call() -> None:
        barrier.wait(5)
        try:
            client.check_report(REPORT)
        except BaseException as exc:
            failures.append(exc)

    def wave() -> None:
        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    wave()
    assert simulator.stats()["tokens_issued"] == 1
    simulator.expire_tokens()
    wave()
    assert not failures
    assert simulator.stats()["tokens_issued"] == 2


def test_timeout(simulator: Simulator) -> None:
    simulator.set_faults(latency_seconds=1.0)
    client, stats = client_for(simulator.url, timeout_seconds=0.3)
    with pytest.raises(e.SigmaTimeoutError):
        client.check_report(REPORT)
    assert stats.freeze().errors[("REPORT_INSTANCE_STATUS_CHECK", "timeout")] == 1
    assert stats.freeze().requests[("REPORT_INSTANCE_STATUS_CHECK", "error")] == 1


def test_slow_body_is_cut_at_the_deadline(simulator: Simulator) -> None:
    simulator.set_faults(slow_body_seconds=5.0)
    client, _ = client_for(simulator.url, timeout_seconds=0.5)
    with pytest.raises(e.SigmaTimeoutError):
        client.check_report(REPORT)


def test_reply_size_cap(simulator: Simulator) -> None:
    simulator.set_faults(huge_reply_bytes=64 * 1024)
    client, _ = client_for(simulator.url, max_reply_bytes=16 * 1024)
    with pytest.raises(e.ReplyTooLargeError):
        client.check_report(REPORT)


def test_truncated_body(simulator: Simulator) -> None:
    simulator.set_faults(truncated_rate=1.0)
    client, stats = client_for(simulator.url)
    with pytest.raises(e.InvalidReplyError):
        client.check_report(REPORT)
    assert stats.freeze().errors[("REPORT_INSTANCE_STATUS_CHECK", "invalid_reply")] == 1


def test_server_errors_and_html(simulator: Simulator) -> None:
    client, _ = client_for(simulator.url)
    simulator.set_faults(error_rate=1.0)
    with pytest.raises(e.ServerError):
        client.check_report(REPORT)
    simulator.set_faults(reset=True, html_rate=1.0)
    with pytest.raises(e.NotJSONError):
        client.check_report(REPORT)


def test_unknown_reference_is_bad_request(simulator: Simulator) -> None:
    client, _ = client_for(simulator.url)
    with pytest.raises(e.BadRequestError):
        client.check_report("no-such-reference")


def test_pending_both_ways(simulator: Simulator) -> None:
    client, _ = client_for(simulator.url)
    assert client.check_report("ref-pending").pending
    simulator.set_faults(bare_204=True)
    assert client.check_report("ref-pending").pending


def test_connection_refused() -> None:
    client, stats = client_for(f"http://127.0.0.1:{free_port()}/sigma/rest/reports")
    with pytest.raises(e.SigmaConnectionError):
        client.check_report(REPORT)
    assert stats.freeze().errors == {("GENERATE_TOKEN", "connection"): 1}


def test_tls_to_a_plain_port_is_a_tls_error(simulator: Simulator) -> None:
    client, _ = client_for(f"https://127.0.0.1:{simulator.port}/sigma/rest/reports")
    with pytest.raises(e.SigmaTLSError):
        client.check_report(REPORT)


def test_server_down_resets_connections(simulator: Simulator) -> None:
    simulator.set_faults(down=True)
    client, _ = client_for(simulator.url)
    with pytest.raises(e.SigmaConnectionError):
        client.check_report(REPORT)


def test_calls_are_timed_per_action(simulator: Simulator) -> None:
    client, stats = client_for(simulator.url)
    client.check_report(REPORT)
    client.check_group("grp-sample")
    durations = stats.freeze().durations
    assert durations["GENERATE_TOKEN"].count == 1
    assert durations["REPORT_INSTANCE_STATUS_CHECK"].count == 1
    assert durations["REPORT_GROUP_INSTANCE_STATUS_CHECK"].count == 1
    assert 0 < durations["REPORT_INSTANCE_STATUS_CHECK"].total < 2


CANARY = "canary-Secret-7f3a9c"


@pytest.mark.parametrize("params_in", ["body", "query"])
def test_secrets_never_leak_into_logs_errors_or_reprs(
    simulator: Simulator, caplog: pytest.LogCaptureFixture, params_in: str
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = {"type": "basic", "username": "sigma", "password": CANARY}
    dead = f"http://127.0.0.1:{free_port()}/sigma/rest/reports"
    texts: list[str] = []
    for url in (simulator.url, dead):
        config = make_config(url, auth, params_in=params_in)
        client = SigmaClient(config.sigma, ApiStats())
        texts += [repr(config), str(config), repr(client), repr(config.sigma.auth)]
        try:
            client.check_report(REPORT)
        except e.SigmaError as exc:
            texts += [str(exc), repr(exc), repr(exc.__context__), str(exc.__cause__)]
    # A live access token too: a fixed one sent in the query string of a refused connection.
    token_client, _ = client_for(dead, {"type": "token", "token": CANARY + "-token"}, params_in=params_in)
    with pytest.raises(e.SigmaConnectionError) as info:
        token_client.check_report(REPORT)
    texts += [str(info.value), repr(info.value)]
    texts += [r.getMessage() for r in caplog.records]
    for text in texts:
        assert CANARY not in text, text
