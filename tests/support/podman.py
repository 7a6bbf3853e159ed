"""Podman for the deploy tests (tests/deploy/): its binaries (the test skips with a reason without them, and
fails under CI=true), the project's containers.conf, the image's local Debian base (made with mmdebstrap and
kept between runs), the image built once per test run and shared by the pytest-xdist workers, and removal of
every container, pod and volume a test started."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.binaries import IN_CI, require_binary
from tests.support.paths import ROOT

#: The settings podman needs on these machines (runc, the host's ulimits); never /etc.
CONTAINERS_CONF = ROOT / "podman" / "containers.conf"
#: Kept between runs, outside the checkout: the base's tarball, the locks of a run's shared image.
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sigma-exporter"
#: What the Dockerfile runs in its base (python, python -m venv, groupadd/useradd) and pip's TLS roots.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "passwd", "ca-certificates")
#: Essential packages only, merged /usr (no usrmerge, so no perl), and no documentation, manual pages or
#: translations: the slim Python images leave those out too.
MMDEBSTRAP_OPTIONS = (
    "--variant=essential",
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)
IMAGE_REPOSITORY = "localhost/sigma-exporter-test"
BASE_REPOSITORY = "localhost/sigma-exporter-base"
#: Where the build's pip finds the CA bundle that the pip.conf given to it names (a build secret).
BUILD_CA = "/run/secrets/ca.crt"


def require_podman() -> str:
    """podman, with runc and catatonit (the pods' pause process); skips or fails (CI=true) without them."""
    for name in ("runc", "catatonit"):
        require_binary(name)
    return require_binary("podman")


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`podman ARGS` with the project's containers.conf; its output captured."""
    result = subprocess.run(
        [require_podman(), *args],
        env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def unique(prefix: str) -> str:
    """A name no other test (or test run, or other user of this podman) has."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def remove(kind: str, *names: str) -> None:
    """Remove containers, pods or volumes by name, whatever their state; missing ones are fine."""
    if names:
        if kind == "pod":  # stopped first: `pod rm --force` of a running pod waits seconds longer
            podman("pod", "stop", "--time=10", *names, timeout=60, check=False)
        podman(kind, "rm", "--force", *names, timeout=60, check=False)


@contextlib.contextmanager
def _locked(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- the base --------------------------------------------------------------------------------------------
def _apt_sources() -> Path | None:
    """The host's apt sources (the mirrors apt reaches here), for mmdebstrap."""
    for candidate in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if candidate.is_file() and candidate.read_text().strip():
            return candidate
    return None


def _codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.partition("=")[2].strip('"') or "bookworm"
    return "bookworm"


@dataclass(frozen=True)
class Base:
    """The local base image; `how` it was had (made, imported, found) and how long that took."""

    image: str
    key: str
    how: str
    seconds: float


def base_image() -> Base:
    """The Dockerfile's PYTHON_IMAGE made locally (no container registry is reached): Debian's python3 by
    mmdebstrap, its tarball cached under CACHE keyed by what made it, imported into podman once."""
    require_podman()
    mmdebstrap = require_binary("mmdebstrap")
    sources = _apt_sources()
    version = subprocess.run(
        [mmdebstrap, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    suite = _codename()
    inputs = {
        "suite": suite,
        "packages": BASE_PACKAGES,
        "options": MMDEBSTRAP_OPTIONS,
        "sources": sources.read_text() if sources else "",
        "mmdebstrap": version,
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    image = f"{BASE_REPOSITORY}:{key}"
    with _locked(CACHE / "base.lock"):
        started = time.monotonic()
        if podman("image", "exists", image, check=False).returncode == 0:
            return Base(image, key, "found in podman's storage", time.monotonic() - started)
        tarball = CACHE / "base" / f"{key}.tar"
        how = "imported from the cached tarball"
        if not tarball.exists():
            how = "made with mmdebstrap and imported"
            tarball.parent.mkdir(parents=True, exist_ok=True)
            partial = tarball.with_suffix(".partial.tar")
            made = subprocess.run(
                [
                    mmdebstrap,
                    *MMDEBSTRAP_OPTIONS,
                    "--include=" + ",".join(BASE_PACKAGES),
                    "--format=tar",
                    suite,
                    str(partial),
                    *([str(sources)] if sources else []),
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if made.returncode != 0:
                partial.unlink(missing_ok=True)
                unavailable(f"mmdebstrap could not make the base image: {made.stderr[-2000:]}")
            partial.rename(tarball)
        podman("import", "--change", 'CMD ["python3"]', str(tarball), image, timeout=300)
        return Base(image, key, how, time.monotonic() - started)


def unavailable(message: str) -> None:
    """Skip the test saying why (fail it under CI=true)."""
    if IN_CI:
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


# --- pip inside the build --------------------------------------------------------------------------------
def _host_pip_settings() -> dict[str, str]:
    """What the host's pip uses (files and PIP_* variables): `pip config list` as {key: value}."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        scope, _, key = name.rpartition(".")
        if scope == ":env:" or key not in settings:  # PIP_* variables win over files, as in pip
            settings[key] = value.strip().strip("'\"")
    return settings


def build_secrets(directory: Path) -> list[str]:
    """`--secret` options giving the build's pip the host's CA bundle and index (a mounted pip.conf; a build
    --env would be baked into the image). Local indexes (file:, paths) cannot be reached from inside."""
    settings = _host_pip_settings()
    lines = ["[global]"]
    options: list[str] = []
    cert = settings.get("cert") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(cert).is_file():
        options += ["--secret", f"id=ca.crt,src={cert}"]
        lines.append(f"cert = {BUILD_CA}")
    for name in ("index-url", "extra-index-url", "trusted-host"):
        values = [v for v in settings.get(name, "").split() if name == "trusted-host" or v.startswith("http")]
        if values:
            lines.append(f"{name} = {' '.join(values)}")
    conf = directory / "pip.conf"
    conf.write_text("\n".join(lines) + "\n")
    return [*options, "--secret", f"id=pip.conf,src={conf}"]


# --- the image -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Image:
    """The image built from the Dockerfile for this test run, with what was measured while building it."""

    tag: str
    base: Base
    build_seconds: float

    def inspect(self) -> dict[str, Any]:
        (found,) = json.loads(podman("image", "inspect", self.tag).stdout)
        assert isinstance(found, dict)
        return found


def _build(tag: str, base: Base, workdir: Path) -> Image:
    started = time.monotonic()
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    try:
        podman(
            "build",
            "--layers=false",  # no intermediate images left behind
            "--network=host",
            "--build-arg",
            f"PYTHON_IMAGE={base.image}",
            "--build-arg",
            f"REVISION={revision or 'unknown'}",
            *build_secrets(workdir),
            "--tag",
            tag,
            "--file",
            str(ROOT / "Dockerfile"),
            str(ROOT),
            timeout=600,
        )
    except BaseException:
        # A build stopped midway leaves its working container behind; only removing its base with --force
        # removes it (the base is imported again from the tarball next time).
        podman("rmi", "--force", base.image, timeout=120, check=False)
        raise
    return Image(tag, base, time.monotonic() - started)


@contextlib.contextmanager
def shared_image(workdir: Path) -> Iterator[Image]:
    """The image of this test run: built by the first pytest-xdist worker that needs it, used by the others
    (each holds a shared lock while it does), removed by the last one to finish."""
    run = (os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex)[:12]
    tag = f"{IMAGE_REPOSITORY}:{run}"
    record = CACHE / f"image-{run}.json"
    in_use = CACHE / f"image-{run}.lock"
    with _locked(CACHE / "image.lock"):  # held while building or removing, never while testing
        if record.exists() and podman("image", "exists", tag, check=False).returncode == 0:
            saved = json.loads(record.read_text())
            image = Image(tag, Base(**saved["base"]), saved["build_seconds"])
        else:
            image = _build(tag, base_image(), workdir)
            record.write_text(json.dumps({"base": asdict(image.base), "build_seconds": image.build_seconds}))
        handle = in_use.open("a")
        fcntl.flock(handle, fcntl.LOCK_SH)
    try:
        yield image
    finally:
        with _locked(CACHE / "image.lock"):
            fcntl.flock(handle, fcntl.LOCK_UN)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # another worker still uses it, and removes it when it is done
            else:
                podman("rmi", "--force", tag, timeout=120, check=False)
                record.unlink(missing_ok=True)
                in_use.unlink(missing_ok=True)
            handle.close()


def venv_packages(image: str) -> dict[str, str]:
    """{name: version} of the distributions in the image's virtualenv (it has no pip to list them)."""
    listed = podman(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint=/opt/venv/bin/python",
        image,
        "-c",
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
    ).stdout
    packages: dict[str, str] = json.loads(listed)
    return packages
