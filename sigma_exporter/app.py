"""The composition root: the one place that builds config, store, poller and web and wires them together.
The CLI, the tests and the benchmarks all build the exporter through it."""

from __future__ import annotations

import logging
import resource
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sigma_exporter import __version__
from sigma_exporter.config.load import Config, ConfigError, load_config, watch_problem
from sigma_exporter.metrics.exposition import ProcessPart
from sigma_exporter.metrics.latest import LatestSnapshot
from sigma_exporter.metrics.snapshot import ExporterInfo, initial_snapshot
from sigma_exporter.poll.loop import ClientFactory, Poller
from sigma_exporter.runs.registry import Registry
from sigma_exporter.runs.schedules import Scheduler
from sigma_exporter.runs.store import StateStore, StoreError, open_store
from sigma_exporter.runs.store.writer import StateWriter
from sigma_exporter.sigma.client import ExchangeHook
from sigma_exporter.sigma.stats import ApiStats
from sigma_exporter.web.api.handlers import Api
from sigma_exporter.web.routes import HEALTH_PATHS, FileReload, Routes
from sigma_exporter.web.server import Limits, WebServer
from sigma_exporter.web.stats import ServerStats, WebCollector
from sigma_exporter.web.webconfig import WebConfigSecurity, WebConfigWatcher

log = logging.getLogger(__name__)

#: How long /-/reload waits for the poll thread to publish the reload's outcome.
RELOAD_PUBLISH_SECONDS = 5.0
#: How long a stop waits for the poll thread and open requests.
SHUTDOWN_SECONDS = 2.0


@dataclass
class Core:
    """What holds runs, polls Sigma and publishes snapshots: no HTTP."""

    config: Config
    stats: ApiStats
    store: LatestSnapshot
    poller: Poller
    state: StateStore
    writer: StateWriter
    registry: Registry
    scheduler: Scheduler

    def stop(self, timeout: float = 2.0) -> None:
        """After the poll thread: write what is pending, then let the store go."""
        self.scheduler.stop(timeout / 2)
        self.registry.stop()
        self.writer.close(timeout)
        self.state.close()


def build_core(
    config: Config,
    *,
    shard_index: int = 0,
    shard_count: int = 1,
    on_secret: Callable[[str], None] | None = None,
    client_factory: ClientFactory | None = None,
    storage_path: str | None = None,
    state: StateStore | None = None,
    on_exchange: ExchangeHook | None = None,
) -> Core:
    """Raises ConfigError when a reference file named by the config is invalid or the state store cannot
    be opened (`state.url`)."""
    if state is None:
        try:
            state = open_store(config.state, storage_path)
        except StoreError as exc:
            raise ConfigError(config.source, "state.url", str(exc)) from None
        if state.description == "memory:":
            log.warning(
                "state.url is memory: runs registered through the API and report history are lost on restart"
            )
    try:
        loaded = state.load()
    except StoreError as exc:
        raise ConfigError(config.source, "state.url", str(exc)) from None
    writer = StateWriter(state)
    registry = Registry(
        state,
        writer,
        max_runs=config.retention.max_runs,
        shard_index=shard_index,
        shard_count=shard_count,
        cursor=loaded.cursor,
    )
    stats = ApiStats()
    info = ExporterInfo.of_this_process(shard_index, shard_count, config.metrics.status_series)
    store = LatestSnapshot(initial_snapshot(info, stats))
    poller = Poller(
        config,
        store,
        info=info,
        stats=stats,
        registry=registry,
        loaded=loaded,
        client_factory=client_factory,
        on_secret=on_secret,
        on_exchange=on_exchange,
    )
    registry.start()

    def active_runs(key: tuple[str, str]) -> int:
        for identity in store.current().snapshot.identities:
            if identity.record.key == key:
                return identity.active
        return 0

    scheduler = Scheduler(
        lambda: poller.config,
        state,
        registry,
        poller.start_run,
        active_runs,
        shard_index=shard_index,
        shard_count=shard_count,
    )
    scheduler.on_change = poller.wake
    poller.schedule_counters = scheduler.counters
    return Core(config, stats, store, poller, state, writer, registry, scheduler)


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one (as Go programs do), so that the connection cap,
    not the file table, is what bounds connections. Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft


@dataclass
class Exporter:
    """The whole exporter: core plus the HTTP server. `start()` binds at once (OSError if it cannot)."""

    config_file: str
    core: Core
    address: tuple[str, int]
    on_secret: Callable[[str], None]
    web_config_file: str | None = None
    open_health: bool = False
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        self.watcher = WebConfigWatcher(self.web_config_file) if self.web_config_file else None
        security = (
            WebConfigSecurity(self.watcher, HEALTH_PATHS if self.open_health else ())
            if self.watcher is not None
            else None
        )
        problem = watch_problem(
            self.core.config, web_users=self.watcher is not None and bool(self.watcher.current().config.users)
        )
        if problem is not None:
            raise problem
        files_limit = raise_open_files_limit()
        limits = self.limits
        if limits.max_connections > files_limit - 64:
            limits = Limits(**{**limits.__dict__, "max_connections": max(16, files_limit - 64)})
            log.warning(
                "--web.max-connections lowered to fit the open files limit",
                extra={"max_connections": limits.max_connections, "open_files_limit": files_limit},
            )
        self.server_stats = ServerStats()
        live = ProcessPart(collectors=(WebCollector(self.server_stats, self.watcher),))
        watcher = self.watcher
        api = Api(
            self.core.store,
            self.core.registry,
            token=lambda: self.core.poller.config.api.token,
            basic_users=lambda: watcher is not None and bool(watcher.current().config.users),
        )
        routes = Routes(self.core.store, live, self.reload, security, self.server_stats, api)
        self.server = WebServer(
            routes.application(limits),
            self.address,
            limits=limits,
            stats=self.server_stats,
            watcher=self.watcher,
        )
        self._poll_thread = threading.Thread(
            target=self.core.poller.run_forever, name="sigma-poller", daemon=True
        )
        self.tls = self.watcher is not None and self.watcher.current().ssl_context is not None

    @property
    def bound(self) -> str:
        host, port = self.server.server_address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> None:
        self.server.start()
        self._poll_thread.start()
        self.core.scheduler.start()

    def stop(self, timeout: float = 2.0) -> None:
        self.core.poller.stop()
        self.server.stop(timeout / 2)
        self._poll_thread.join(timeout / 4)
        self.core.stop(timeout / 4)

    def reload(self) -> list[FileReload]:
        """Re-read the config (with its reference files) and the web config; each good file takes effect,
        each bad one leaves its last good version in force. Waits (bounded) until the poll thread has
        published the outcome, so that /metrics shows it when the reply arrives."""

        def load() -> Config:
            new = load_config(self.config_file)
            self.on_secret(*new.secrets())
            return new

        ok, error = self.core.poller.reload(load)
        results = [FileReload("config", self.config_file, "" if ok else error)]
        if self.watcher is not None and self.watcher.path is not None:
            good = self.watcher.reload()
            results.append(
                FileReload("web config", self.watcher.path, "" if good else self.watcher.last_error or "?")
            )
        if not self.core.poller.wait_applied(RELOAD_PUBLISH_SECONDS):
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
) -> Exporter:
    """Raises ConfigError (a bad reference file, web config or state store) or OSError (cannot listen)."""
    core = build_core(
        config,
        shard_index=shard_index,
        shard_count=shard_count,
        on_secret=on_secret,
        storage_path=storage_path,
        on_exchange=on_exchange,
    )
    return Exporter(config_file, core, address, on_secret, web_config_file, open_health, limits or Limits())


def run_until_signalled(
    exporter: Exporter,
    ready: Callable[[str], None] | None = None,
    *,
    config_file: str,
    shard: str,
    shutdown_seconds: float = SHUTDOWN_SECONDS,
) -> None:
    """Start the exporter and serve until SIGTERM or SIGINT; SIGHUP reloads, as /-/reload does."""
    exporter.start()
    scheme = "https" if exporter.tls else "http"
    log.info(
        "sigma-exporter started",
        extra={
            "version": __version__,
            "listen": f"{scheme}://{exporter.bound}",
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


__all__ = ["ConfigError", "Core", "Exporter", "build_core", "build_exporter", "run_until_signalled"]
