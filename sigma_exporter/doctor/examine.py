"""The doctor's steps after connecting: token, where the parameters go (body or query), each given
reference (and the quirks of its reply), latency (with suggested settings), and optionally one run of a
harmless report. Every exchange is seen by a `Recorder`, which also learns the access tokens Sigma hands
out so that the text can be redacted of them."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from sigma_exporter.config.model import Config
from sigma_exporter.doctor.connect import check_connect
from sigma_exporter.doctor.findings import FAILED, OK, WARNING, Finding
from sigma_exporter.sigma.client import ExchangeHook, SigmaClient
from sigma_exporter.sigma.errors import BadRequestError, SigmaError, UnauthorizedError
from sigma_exporter.sigma.quirks import quirks
from sigma_exporter.sigma.replies import FINAL_STATUSES
from sigma_exporter.sigma.stats import ApiStats

PROBE_REFERENCE: Final = "sigma-exporter-doctor-probe"
PARAM_PLACES: Final = ("body", "query")


@dataclass
class Exchange:
    """One call the doctor made: its action, the HTTP status and the raw reply body."""

    action: str
    status: int
    body: bytes


@dataclass
class Recorder:
    """Every exchange a doctor's client had, and the access tokens Sigma handed out (to redact them)."""

    exchanges: list[Exchange] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    forward: ExchangeHook | None = None  # --record

    def __call__(
        self, action: str, params: Mapping[str, object], status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        """The client's exchange hook: keep the exchange and hand it on to --record, if any. Called on the
        doctor's one thread, by each step's client."""
        self.exchanges.append(Exchange(action, status, body))
        if self.forward is not None:
            self.forward(action, params, status, headers, body)


@dataclass(frozen=True)
class Plan:
    """What the user asked the doctor to look at: references, and a report to run once."""

    references: tuple[str, ...] = ()
    run_report_id: str | None = None
    run_timeout: float = 600.0
    run_interval: float = 2.0


def _client(config: Config, recorder: Recorder, params_in: str | None = None) -> SigmaClient:
    """A client of its own for a step (one connection), its exchanges and tokens seen by `recorder`."""
    sigma = config.sigma if params_in is None else replace(config.sigma, params_in=params_in)
    return SigmaClient(
        sigma, ApiStats(), pool_size=1, on_secret=recorder.secrets.append, on_exchange=recorder
    )


def _timed(call: Callable[[], object]) -> tuple[float, BaseException | None]:
    start = time.perf_counter()
    try:
        call()
    except (SigmaError, OSError) as exc:
        return time.perf_counter() - start, exc
    return time.perf_counter() - start, None


# -- token and parameters --------------------------------------------------------------------------------
def check_token(config: Config, recorder: Recorder) -> Finding:
    """Can the configured credentials get a token? When the call fails other than with 401, it is tried again
    with the parameters in the other place, to tell a wrong `params_in` from a wrong URL or credentials."""
    client = _client(config, recorder)
    try:
        seconds, error = _timed(client.authenticate)
    finally:
        client.close()
    auth = config.sigma.auth.type
    if isinstance(error, UnauthorizedError):
        return Finding("token", FAILED, f"Sigma refused the {auth} credentials (401)", "check sigma.auth")
    if error is not None:
        configured = config.sigma.params_in
        other = next(place for place in PARAM_PLACES if place != configured)
        retry = _client(config, recorder, other)
        try:
            _, again = _timed(retry.authenticate)
        finally:
            retry.close()
        if again is None:
            return Finding(
                "token",
                FAILED,
                f"GENERATE_TOKEN with params in the {configured} failed ({error}); in the {other} it works",
                f"set sigma.params_in: {other}",
            )
        return Finding("token", FAILED, f"GENERATE_TOKEN failed: {error}", "check sigma.url and sigma.auth")
    if not recorder.secrets:
        return Finding("token", OK, f"fixed token ({auth}): nothing to generate", "")
    return Finding(
        "token", OK, f"GENERATE_TOKEN with {auth} credentials answered in {seconds * 1000:.0f} ms", ""
    )


def _accepts(config: Config, recorder: Recorder, place: str, reference: str | None) -> bool:
    """Whether Sigma reads parameters sent in `place`: it hands out a token, then answers a status call
    (for a reference it knows, or, without one, the probe's "unknown reference")."""
    client = _client(config, recorder, place)
    try:
        client.authenticate()
        if reference is None:
            client.probe(PROBE_REFERENCE)
        else:
            try:
                client.check_report(reference)
            except BadRequestError:
                client.check_group(reference)
    except SigmaError:
        return False
    finally:
        client.close()
    return True


def check_params(config: Config, recorder: Recorder, reference: str | None) -> tuple[Finding, str]:
    """The step, and the place the later steps use: the configured one, or else one Sigma accepts."""
    accepted = [place for place in PARAM_PLACES if _accepts(config, recorder, place, reference)]
    configured = config.sigma.params_in
    said = ", ".join(f"{p}: {'accepted' if p in accepted else 'refused'}" for p in PARAM_PLACES)
    detail = f"{said} (configured: params_in: {configured})"
    if configured in accepted:
        return Finding("params", OK, detail, ""), configured
    if accepted:
        return Finding("params", FAILED, detail, f"set sigma.params_in: {accepted[0]}"), accepted[0]
    hint = "Sigma took the parameters neither way: see the token step" + (
        f" (or is {reference} unknown to it?)" if reference else ""
    )
    return Finding("params", FAILED, detail, hint), configured


# -- references and their quirks (sigma/quirks.py) -------------------------------------------------------
def check_reference(config: Config, recorder: Recorder, reference: str, place: str) -> Finding:
    """A status check of a report run, or else of a group run, and the quirks its reply showed."""
    client = _client(config, recorder, place)
    seen = len(recorder.exchanges)
    name = f"reference {reference}"
    try:
        try:
            reply = client.check_report(reference)
            detail = "PENDING (no status yet)" if reply.pending else f"{reply.report.status}"
            if reply.report.report_id:
                detail += f" (report {reply.report.report_id})"
        except BadRequestError:
            group = client.check_group(reference)
            statuses = ", ".join(sorted({r.status for r in group.reports})) or "PENDING (no status yet)"
            detail = f"group {group.report_group_id or '?'}: {len(group.reports)} report(s), {statuses}"
    except BadRequestError as exc:
        return Finding(
            name, FAILED, f"Sigma knows it neither as a report nor as a group run ({exc.reason})", "check it"
        )
    except SigmaError as exc:
        return Finding(name, FAILED, str(exc), "")
    finally:
        client.close()
    odd = sorted(
        {
            q
            for e in recorder.exchanges[seen:]
            if e.action != "GENERATE_TOKEN" and e.status < 400
            for q in quirks(e.status, e.body)
        }
    )
    return Finding(name, OK, detail + (f"; quirks: {', '.join(odd)}" if odd else "; no quirks"), "")


# -- latency and settings --------------------------------------------------------------------------------
def check_latency(config: Config, seconds: Sequence[float]) -> Finding:
    """The status calls' median and slowest times, with the timeout and concurrency they suggest; a warning
    when the configured ones fall short. Pure."""
    if not seconds:
        return Finding("latency", WARNING, "no status call was answered", "")
    slowest, median = max(seconds), statistics.median(seconds)
    held = max(1, len(config.references.references))
    interval = config.poll.interval_seconds
    timeout = max(2.0, math.ceil(slowest * 5))
    concurrency = max(1, math.ceil(held * median / (interval / 2)))
    detail = (
        f"status calls: median {median * 1000:.0f} ms, slowest {slowest * 1000:.0f} ms over {len(seconds)}; "
        f"suggested timeout_seconds >= {timeout:g}, poll.concurrency >= {concurrency} "
        f"for {held} reference(s) every {interval:g} s"
    )
    problems = []
    if config.sigma.timeout_seconds < slowest * 3:
        problems.append(
            f"sigma.timeout_seconds {config.sigma.timeout_seconds:g} is close to the slowest call"
        )
    if config.poll.concurrency < concurrency:
        problems.append(f"poll.concurrency {config.poll.concurrency} cannot check them all in time")
    if problems:
        return Finding("latency", WARNING, detail, "; ".join(problems))
    return Finding("latency", OK, detail, "")


def check_run(config: Config, recorder: Recorder, plan: Plan) -> Finding:
    """Start one run of the plan's report and follow it to a final status within `run_timeout`: ok for a
    success or no data, a warning for a failure, failed when it cannot be started or followed or does not end
    in time."""
    assert plan.run_report_id is not None
    client = _client(config, recorder)
    name = f"run {plan.run_report_id}"
    try:
        started = time.monotonic()
        reference = client.start_run("report", plan.run_report_id)
        while time.monotonic() - started < plan.run_timeout:
            reply = client.check_report(reference)
            if not reply.pending and reply.report.status in FINAL_STATUSES:
                took = time.monotonic() - started
                result = (
                    OK if reply.report.status in ("PUBLISHED", "NOTIFIED", "NO_DATA_AVAILABLE") else WARNING
                )
                return Finding(name, result, f"{reference}: {reply.report.status} after {took:.1f} s", "")
            time.sleep(plan.run_interval)
    except SigmaError as exc:
        return Finding(name, FAILED, f"could not start or follow the run: {exc}", "check the report id")
    finally:
        client.close()
    return Finding(name, FAILED, f"{reference}: no final status within {plan.run_timeout:g} s", "")


# -- the whole visit -------------------------------------------------------------------------------------
def examine(config: Config, plan: Plan, recorder: Recorder | None = None) -> list[Finding]:
    """Every step in order; stops early when a step leaves nothing further to try."""
    recorder = recorder or Recorder()
    steps = [check_connect(config)]
    if steps[-1].result == FAILED:
        return steps
    steps.append(check_token(config, recorder))
    if "(401)" in steps[-1].detail:
        return steps  # nothing further can authenticate
    references = (
        plan.references or tuple(r.reference for r in config.references.references if r.kind == "report")[:3]
    )
    params, place = check_params(config, recorder, references[0] if references else None)
    steps.append(params)
    for reference in references:
        steps.append(check_reference(config, recorder, reference, place))
    timings = _status_timings(config, recorder, references, place)
    steps.append(check_latency(config, timings))
    if plan.run_report_id:
        steps.append(check_run(config, recorder, plan))
    return steps


def _status_timings(config: Config, recorder: Recorder, references: Sequence[str], place: str) -> list[float]:
    client = _client(config, recorder, place)
    timings: list[float] = []
    try:
        try:
            client.authenticate()
        except SigmaError:
            return timings
        for reference in [*references, PROBE_REFERENCE] * 3:
            start = time.perf_counter()
            try:
                client.check_report(reference)
            except BadRequestError:
                pass  # the probe's expected answer: it still measures a round trip
            except SigmaError:
                continue
            timings.append(time.perf_counter() - start)
    finally:
        client.close()
    return timings
