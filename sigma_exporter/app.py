"""The composition root: the one place that builds every part with its collaborators, starts them in order
and stops them in reverse. serve, once, demo, doctor, the tests and the benchmarks all go through it.

A part owns a thread, a socket or a connection. Its constructor only assigns; `start()` brings it up (or
raises) and `stop(timeout)` lets it go. The order, and so what each part may rely on when it starts:

    state store -> identity ownership (takes this shard's identities) -> writer -> Sigma link
        -> worker pool -> registry -> poller (restores, publishes) -> web server (binds)
        -> poll loop (first cycle) -> scheduler

Nothing talks to Sigma before the exporter answers on its address; on the way down the scheduler and the
loop stop first, the writer writes what is pending, the identities are let go and the store closes last.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sigma_exporter import __version__
from sigma_exporter.config.inforce import ConfigInForce
from sigma_exporter.config.load import Config, ConfigError, load_config, watch_problem
from sigma_exporter.config.model import Schedule
from sigma_exporter.doctor.examine import Plan, Recorder, examine
from sigma_exporter.doctor.findings import Finding
from sigma_exporter.metrics.exposition import ProcessPart
from sigma_exporter.metrics.latest import LatestSnapshot
from sigma_exporter.metrics.snapshot import ExporterInfo, Snapshot, initial_snapshot
from sigma_exporter.parts import SHUTDOWN_SECONDS, Part, Parts
from sigma_exporter.poll.inbox import ReloadInbox
from sigma_exporter.poll.loop import PollLoop
from sigma_exporter.poll.poller import Poller
from sigma_exporter.poll.workers import WorkerPool
from sigma_exporter.runs.clock import Clock, clock_from_environment
from sigma_exporter.runs.holdings import Holdings
from sigma_exporter.runs.ownership import Ownership
from sigma_exporter.runs.references import Shard
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.schedules import Scheduler
from sigma_exporter.runs.store import StateStore, StoreError, store_for
from sigma_exporter.runs.store.records import owner_token
from sigma_exporter.runs.store.sqlite import StateFileError
from sigma_exporter.runs.store.writer import StateWriter
from sigma_exporter.sigma.client import ExchangeHook
from sigma_exporter.sigma.link import SigmaLink
from sigma_exporter.sigma.stats import ApiStats
from sigma_exporter.web.api.handlers import Api
from sigma_exporter.web.external import default_external_url
from sigma_exporter.web.reports import Reports
from sigma_exporter.web.routes import HEALTH_PATHS, FileReload, Routes
from sigma_exporter.web.server import Limits, WebServer, raise_open_files_limit
from sigma_exporter.web.stats import ServerStats, WebCollector
from sigma_exporter.web.webconfig import WebConfigSecurity, WebConfigWatcher

log = logging.getLogger(__name__)

#: How long /-/reload waits for the poll thread to publish the reload's outcome.
RELOAD_PUBLISH_SECONDS: Final = 5.0


@dataclass(frozen=True)
class Core:
    """What holds runs, polls Sigma and publishes snapshots: everything but HTTP."""

    in_force: ConfigInForce
    latest: LatestSnapshot
    state: StateStore
    ownership: Ownership
    writer: StateWriter
    link: SigmaLink
    pool: WorkerPool
    registry: Registry
    inbox: ReloadInbox
    poller: Poller
    loop: PollLoop
    scheduler: Scheduler
    clock: Clock  # the wall clock of runs and expectations, shared by every part that stamps or judges them

    def parts(self, *, polling: bool = True, web: Part | None = None) -> list[Part]:
        """In start order, with the web server (when given) before anything talks to Sigma. Without
        `polling`, no poll thread and no scheduler: the caller runs the cycles (`once`, tests)."""
        parts: list[Part] = [self.state, self.ownership, self.writer, self.link, self.pool, self.registry]
        parts.append(self.poller)
        if web is not None:
            parts.append(web)
        if polling:
            parts += [self.loop, self.scheduler]
        return parts


def build_core(
    config: Config,
    *,
    shard_index: int = 0,
    shard_count: int = 1,
    on_secret: Callable[[str], None] | None = None,
    storage_path: str | None = None,
    state: StateStore | None = None,
    on_exchange: ExchangeHook | None = None,
    clock: Clock | None = None,
    redact: Callable[[str], str] = str,
    external_url: str = "",
) -> Core:
    """Every part of the core, wired, none started. `clock`: the wall clock of runs and expectations (default
    the system's, or the testing hook's when its environment variable is set: runs/clock.py); `redact`: what
    masks the secrets in Sigma's error texts before a report's history keeps them (the log's redactor);
    `external_url`: --web.external-url, normalised (web/external.py); "" publishes no links."""
    owner_state: StateStore | None = (
        None  # the identities' sync's own connection (the caller's store: shared)
    )
    if state is None:
        state = store_for(config.state, storage_path)
        if state.description == "memory:":
            log.warning(
                "state.url is memory: runs registered through the API and report history are lost on restart"
            )
        else:
            owner_state = store_for(config.state, storage_path)
    shard = Shard(shard_index, shard_count)
    state.token = owner_token(str(shard))
    if owner_state is not None:
        owner_state.token = state.token
    clock = clock or clock_from_environment(os.environ)
    wake = threading.Event()  # news for the poll thread: arrivals, reloads, schedule starts
    in_force = ConfigInForce(config)
    stats = ApiStats()
    info = ExporterInfo.of_this_process(shard_index, shard_count, config.metrics.status_series, external_url)
    latest = LatestSnapshot(initial_snapshot(info, stats))
    writer = StateWriter(state)
    link = SigmaLink(config, stats, on_secret=on_secret, on_exchange=on_exchange)
    pool = WorkerPool(config.poll.concurrency)
    registry = Registry(
        state,
        writer,
        max_runs=config.retention.max_runs,
        max_identities=config.retention.max_identities,
        shard=shard,
        wake=wake,
    )
    inbox = ReloadInbox(wake)
    ownership = Ownership(owner_state or state, shard, wake=wake, own_store=owner_state is not None)

    def active_runs(key: tuple[str, str]) -> int:
        for identity in latest.current().snapshot.identities:
            if identity.record.key == key:
                return identity.active
        return 0

    def start_run(schedule: Schedule) -> str:
        expectation = schedule.expectation
        ident = expectation.report_group_id or expectation.report_id
        return link.start_run(expectation.kind, ident, schedule.filter)

    scheduler = Scheduler(
        in_force.get, state, registry, start_run, active_runs, shard=shard, wake=wake, clock=clock
    )
    poller = Poller(
        in_force,
        state=state,
        holdings=Holdings(registry, config.metrics.duration_buckets, shard, clock, redact),
        registry=registry,
        link=link,
        pool=pool,
        latest=latest,
        inbox=inbox,
        writer=writer,
        stats=stats,
        info=info,
        ownership=ownership,
        schedule_counts=scheduler.counters,
    )
    loop = PollLoop(poller, wake)
    return Core(
        in_force,
        latest,
        state,
        ownership,
        writer,
        link,
        pool,
        registry,
        inbox,
        poller,
        loop,
        scheduler,
        clock,
    )


def start_parts(parts: Parts, config: Config) -> None:
    """Start `parts`; a state file that cannot be used is its own error (`FILE: problem`), another state
    store that cannot be opened or read is the config's `state.url` error."""
    try:
        parts.start()
    except StateFileError as exc:
        raise ConfigError(str(exc.path), "", exc.problem) from None
    except StoreError as exc:
        raise ConfigError(config.source, "state.url", str(exc)) from None


def run_once(
    config: Config, *, on_secret: Callable[[str], None] | None = None, on_exchange: ExchangeHook | None = None
) -> tuple[Snapshot, bytes]:
    """One poll cycle keeping no state: the snapshot and its exposition (text format)."""
    from sigma_exporter.runs.store.memory import MemoryStore

    core = build_core(config, on_secret=on_secret, state=MemoryStore(), on_exchange=on_exchange)
    parts = Parts(core.parts(polling=False))
    start_parts(parts, config)
    try:
        snapshot = core.poller.run_cycle()
    finally:
        parts.stop(SHUTDOWN_SECONDS)
    return snapshot, core.latest.current().rendered.text


def diagnose(config: Config, plan: Plan, recorder: Recorder) -> list[Finding]:
    """The doctor's visit: each step opens and closes a client of its own."""
    return examine(config, plan, recorder)


@dataclass
class Exporter:
    """The whole exporter: the core and the HTTP server, as one list of parts. `serve_until_signalled`
    calls `start` and `stop` on the main thread; `reload` runs on SIGHUP's thread (and in tests)."""

    config_file: str
    core: Core
    server: WebServer
    watcher: WebConfigWatcher | None
    on_secret: Callable[[str], None]

    def __post_init__(self) -> None:
        self.parts = Parts(self.core.parts(web=self.server))

    @property
    def tls(self) -> bool:
        """HTTPS (the web config has TLS)."""
        return self.watcher is not None and self.watcher.current().ssl_context is not None

    @property
    def bound(self) -> str:
        """The address it listens on, as HOST:PORT."""
        host, port = self.server.server_address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> None:
        """Start every part. Raises ConfigError (a bad reference file or state store) or OSError (cannot
        listen)."""
        start_parts(self.parts, self.core.in_force.get())

    def stop(self, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Stop every part, in reverse."""
        self.parts.stop(timeout)

    def reload(self) -> list[FileReload]:
        """Re-read the config and the web config (as /-/reload and SIGHUP do)."""
        return reload_files(self.config_file, self.core.inbox, self.watcher, self.on_secret)


def reload_files(
    config_file: str, inbox: ReloadInbox, watcher: WebConfigWatcher | None, on_secret: Callable[[str], None]
) -> list[FileReload]:
    """Re-read the config (with its reference files) and the web config; each good file takes effect, each
    bad one leaves its last good version in force. Waits (bounded) until the poll thread has published the
    outcome, so that /metrics shows it when the reply arrives."""

    def load() -> Config:
        new = load_config(config_file)
        on_secret(*new.secrets())
        return new

    ok, error = inbox.load(load)
    results = [FileReload("config", config_file, "" if ok else error)]
    if watcher is not None and watcher.path is not None:
        good = watcher.reload()
        results.append(FileReload("web config", watcher.path, "" if good else watcher.last_error or "?"))
    if not inbox.wait_applied(RELOAD_PUBLISH_SECONDS):
        log.warning("reload outcome not yet published: the poll thread is busy with a cycle")
    return results


def build_exporter(
    config_file: str,
    config: Config,
    address: tuple[str, int],
    on_secret: Callable[[str], None],
    *,
    shard_index: int = 0,
    shard_count: int = 1,
    web_config_file: str | None = None,
    open_health: bool = False,
    limits: Limits | None = None,
    storage_path: str | None = None,
    on_exchange: ExchangeHook | None = None,
    redact: Callable[[str], str] = str,
    external_url: str = "",
) -> Exporter:
    """Every part of the exporter, wired, none started. `external_url`: --web.external-url normalised, or ""
    for the default (https when the web config turns TLS on). Raises ConfigError (a bad web config, or
    nothing to watch)."""
    watcher = WebConfigWatcher(web_config_file) if web_config_file else None
    web_users = watcher is not None and bool(watcher.current().config.users)
    tls = watcher is not None and watcher.current().ssl_context is not None
    external_url = external_url or default_external_url(address, tls=tls)
    problem = watch_problem(config, web_users=web_users)
    if problem is not None:
        raise problem
    core = build_core(
        config,
        shard_index=shard_index,
        shard_count=shard_count,
        on_secret=on_secret,
        storage_path=storage_path,
        on_exchange=on_exchange,
        redact=redact,
        external_url=external_url,
    )
    limits = limits or Limits()
    files_limit = raise_open_files_limit()
    if limits.max_connections > files_limit - 64:
        limits = Limits(**{**limits.__dict__, "max_connections": max(16, files_limit - 64)})
        log.warning(
            "--web.max-connections lowered to fit the open files limit",
            extra={"max_connections": limits.max_connections, "open_files_limit": files_limit},
        )
    security = (
        WebConfigSecurity(watcher, HEALTH_PATHS if open_health else ()) if watcher is not None else None
    )
    server_stats = ServerStats()
    live = ProcessPart(collectors=(WebCollector(server_stats, watcher),))
    api = Api(
        core.latest,
        core.registry,
        token=lambda: core.in_force.get().api.token,
        basic_users=lambda: watcher is not None and bool(watcher.current().config.users),
        now=core.clock.time,
    )
    reload = functools.partial(reload_files, config_file, core.inbox, watcher, on_secret)
    reports = Reports(core.state, server_stats, now=core.clock.time)
    routes = Routes(core.latest, live, reload, security, server_stats, api, reports)
    server = WebServer(
        routes.application(limits), address, limits=limits, stats=server_stats, watcher=watcher
    )
    return Exporter(config_file, core, server, watcher, on_secret)


def serve_until_signalled(
    exporter: Exporter,
    ready: Callable[[str], None] | None = None,
    *,
    config_file: str,
    shard: str,
    shutdown_seconds: float = SHUTDOWN_SECONDS,
) -> None:
    """Start the exporter and serve until SIGTERM or SIGINT; SIGHUP reloads, as /-/reload does. Raises as
    `Exporter.start` does."""
    exporter.start()
    scheme = "https" if exporter.tls else "http"
    log.info(
        "sigma-exporter started",
        extra={
            "version": __version__,
            "listen": f"{scheme}://{exporter.bound}",
            "external_url": exporter.core.latest.current().snapshot.info.external_url,
            "config": config_file,
            "shard": shard,
        },
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            threading.Thread(target=exporter.reload, name="sigma-reload", daemon=True).start()
        else:
            log.info("shutting down", extra={"signal": signal.Signals(signum).name})
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if ready is not None:
        ready(exporter.bound)
    while not stop.wait(0.5):
        pass
    exporter.stop(shutdown_seconds)
    log.info("stopped")


__all__ = [
    "ConfigError",
    "Core",
    "Exporter",
    "build_core",
    "build_exporter",
    "diagnose",
    "run_once",
    "serve_until_signalled",
]
