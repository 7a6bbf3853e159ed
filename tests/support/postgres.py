"""A throwaway PostgreSQL cluster for the state store tests: Debian's `postgresql` binaries, a data
directory under the test session's temporary directory, loopback only, a free port, stopped at the end.
As root the server runs as the `postgres` user (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.binaries import IN_CI
from tests.support.net import free_port

SUPERUSER = "sigma"
PASSWORD = "pg-canary-" + uuid.uuid4().hex  # a secret the tests look for in logs and errors


def find_bin() -> Path | None:
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(initdb).parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    run_as: list[str]

    @property
    def host_url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}"

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.run_as, *command], capture_output=True, text=True, timeout=timeout, check=True, cwd="/"
        )

    def client(self, tool: str, url: str, *args: str, stdin: str | None = None) -> str:
        """Run a client program of the cluster's version (psql, pg_dump) against `url`; its output."""
        return subprocess.run(
            [*self.run_as, str(self.bindir / tool), *args, url],
            input=stdin,
            env={**os.environ, "PGPASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd="/",
        ).stdout

    def state_config(self, directory: Path) -> dict[str, str]:
        """A new database as the exporter's `state:` config: its URL, and the password in a file under
        `directory`."""
        password = directory / "pg-password"
        password.write_text(PASSWORD)
        return {"url": self.create_database(), "password_file": str(password)}

    def create_database(self) -> str:
        """A new, empty database; its URL (the password is given apart)."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"{self.host_url}/postgres", password=PASSWORD, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"{self.host_url}/{name}"

    def start(self) -> None:
        """Start the server (again, after `stop`: the same data directory and port), and wait until it
        accepts connections."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c max_connections=50"
        self.run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(f"{self.host_url}/postgres", password=PASSWORD, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        subprocess.run(
            [
                *self.run_as,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
            cwd="/",
        )


def start_cluster(base: Path) -> Iterator[Cluster]:
    bindir = find_bin()
    if bindir is None:
        message = "PostgreSQL is not installed (Debian package postgresql); install it to run this test"
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    run_as: list[str] = []
    if os.geteuid() == 0:
        # pytest's temporary directories are private to root; the server's user must reach its own.
        root = Path(tempfile.mkdtemp(prefix="sigma-exporter-pg-"))
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    else:
        root = base / "pg"
        root.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if run_as:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
    cluster = Cluster(bindir, root, free_port(), run_as)
    cluster.run(
        str(bindir / "initdb"),
        "-D",
        str(root / "data"),
        "-U",
        SUPERUSER,
        f"--pwfile={pwfile}",
        "--auth-local=scram-sha-256",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--no-sync",
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        if run_as:
            shutil.rmtree(root, ignore_errors=True)
