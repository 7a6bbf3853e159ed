"""The Dockerfile: hadolint clean, and consistent with what it packages and with the Helm chart that runs it
(console script, default port, config path, numeric non-root uid, version labels, build context).

No container engine is needed: the checks read the Dockerfile, .dockerignore, pyproject.toml, the CLI and the
chart. test_image.py builds the image with podman and runs it.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.support.binaries import require_binary
from tests.support.paths import ROOT

try:
    tomllib = importlib.import_module("tomllib")
except ModuleNotFoundError:  # Python 3.10: the backport, when installed
    tomllib = pytest.importorskip("tomli")

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHART = ROOT / "helm" / "sigma-exporter"


@dataclass(frozen=True)
class Instruction:
    stage: int  # index of the FROM it belongs to (-1: before the first FROM)
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped (enough for this Dockerfile)."""
    result: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        result.append(Instruction(stage, keyword, " ".join(args.split())))
    assert not pending, "Dockerfile ends inside a line continuation"
    return result


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text())
FINAL_STAGE = max(i.stage for i in INSTRUCTIONS)


def final(keyword: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.stage == FINAL_STAGE and i.keyword == keyword]


def exec_form(keyword: str) -> list[str]:
    (instruction,) = final(keyword)
    value = json.loads(instruction.args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{keyword} is not exec form"
    return value


def pyproject() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data


def chart_values() -> dict[str, Any]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


def arg_defaults(stage: int | None = None) -> dict[str, str]:
    defaults: dict[str, str] = {}
    for instruction in INSTRUCTIONS:
        if instruction.keyword == "ARG" and (stage is None or instruction.stage == stage):
            name, _, default = instruction.args.partition("=")
            if default:
                defaults[name] = default
    return defaults


def labels() -> dict[str, str]:
    result: dict[str, str] = {}
    for instruction in final("LABEL"):
        for token in shlex.split(instruction.args):
            key, _, value = token.partition("=")
            result[key] = value
    return result


# --- hadolint -------------------------------------------------------------------------------------------------
def run_hadolint(path: Path) -> tuple[int, list[dict[str, object]]]:
    hadolint = require_binary("hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", "--format", "json", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert isinstance(findings, list), result.stdout
    return result.returncode, findings


def test_hadolint_is_clean() -> None:
    code, findings = run_hadolint(DOCKERFILE)
    assert (code, findings) == (0, [])


def test_hadolint_does_report_problems(tmp_path: Path) -> None:
    """The clean result above means something: a sloppy Dockerfile gets findings."""
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install curl\nRUN pip install requests\n"
    )
    code, findings = run_hadolint(sloppy)
    codes = {f["code"] for f in findings}
    assert code != 0 and {"DL3007", "DL3013"} <= codes, findings


# --- stages ---------------------------------------------------------------------------------------------------
def test_two_stages_on_the_same_slim_python_base() -> None:
    froms = [i.args for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert len(froms) == 2
    builder_image, _, builder_name = froms[0].partition(" AS ")
    assert builder_name == "builder"
    assert froms[1] == builder_image, "the venv's interpreter path must exist in the final stage"
    base = arg_defaults(-1)["PYTHON_IMAGE"] if builder_image == "${PYTHON_IMAGE}" else builder_image
    assert re.fullmatch(r"python:3\.1[0-9]-slim(-[a-z]+)?", base), base
    minimum = pyproject()["project"]["requires-python"]
    assert minimum == ">=3.10" and int(base.split(".")[1].split("-")[0]) >= 10


def test_final_stage_carries_only_the_virtualenv() -> None:
    copies = final("COPY")
    assert [c.args for c in copies] == ["--from=builder /opt/venv /opt/venv"]
    runs = " ".join(i.args for i in final("RUN"))
    for tool in ("pip ", "apt-get", "apk ", "gcc", "curl", "wget"):
        assert tool not in runs, f"final stage runs {tool.strip()}"
    builder_runs = " ".join(i.args for i in INSTRUCTIONS if i.stage == 0 and i.keyword == "RUN")
    assert "pip install --no-cache-dir ." in builder_runs
    assert "pip uninstall --yes pip" in builder_runs  # the copied venv has no installer
    env = " ".join(i.args for i in final("ENV"))
    assert "PATH=/opt/venv/bin:$PATH" in env


def test_build_context_holds_what_the_build_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for i in INSTRUCTIONS
        if i.keyword == "COPY" and not i.args.startswith("--from")
        for source in i.args.split()[:-1]
    ]
    assert copied
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    package_files = [p for p in tracked if p.startswith("sigma_exporter/")]
    assert package_files and any(p.endswith(".yml") for p in package_files)  # package data included
    for path in [*copied, *package_files]:
        assert (ROOT / path).exists(), path
        assert not dockerignored(path, patterns), f"{path} is copied but excluded by .dockerignore"
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "helm/sigma-exporter/values.yaml",
        "sigma_exporter/__pycache__/cli.cpython-312.pyc",
        "Dockerfile",
    ):
        assert dockerignored(path, patterns), f"{path} would be sent to the Docker daemon"
    readme = pyproject()["project"]["readme"]
    assert readme in copied  # setuptools reads it while building


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        elif pattern[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif pattern[index] == "?":
            out, index = out + "[^/]", index + 1
        else:
            out, index = out + re.escape(pattern[index]), index + 1
    return re.compile(out + r"\Z")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent directory matches too."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        regex = _pattern_regex(pattern.strip("/"))
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_matcher() -> None:
    patterns = ["*", "!pkg/", "**/__pycache__"]
    assert dockerignored("x.txt", patterns) and dockerignored("dir/y", patterns)
    assert not dockerignored("pkg/a.py", patterns) and not dockerignored("pkg/sub/b.yml", patterns)
    assert dockerignored("pkg/__pycache__/a.pyc", patterns) and dockerignored("__pycache__/a", patterns)


# --- what runs ------------------------------------------------------------------------------------------------
def test_entrypoint_is_the_console_script_serving() -> None:
    entrypoint = exec_form("ENTRYPOINT")
    scripts = pyproject()["project"]["scripts"]
    program = PurePosixPath(entrypoint[0])
    assert program.name in scripts
    assert program.parent == PurePosixPath("/opt/venv/bin")  # the copied virtualenv
    assert entrypoint[1:] == ["serve"]
    cli = pytest.importorskip("sigma_exporter.cli")
    module, _, attribute = scripts[program.name].partition(":")
    assert module == "sigma_exporter.cli" and getattr(cli, attribute) is cli.main
    assert "serve" in cli.main.commands


def test_cmd_config_path_is_the_cli_default_and_the_chart_mount() -> None:
    cmd = exec_form("CMD")
    (config_arg,) = cmd
    option, _, path = config_arg.partition("=")
    assert option == "--config.file"
    cli = pytest.importorskip("sigma_exporter.cli")
    serve = cli.main.commands["serve"]
    (config_option,) = [p for p in serve.params if "--config.file" in getattr(p, "opts", [])]
    assert path == config_option.default
    from tests.support.chart import container, mount_for, render_file

    manifests = render_file(None)
    assert config_arg in container(manifests)["args"]
    mount, volume = mount_for(manifests, PurePosixPath(path))
    assert mount["mountPath"] == path and "configMap" in volume
    # The image has the directories the chart mounts into.
    runs = " ".join(i.args for i in final("RUN"))
    assert f"mkdir -p {PurePosixPath(path).parent}/references.d" in runs


def test_exposed_port_is_the_default_listen_port_and_the_chart_port() -> None:
    (expose,) = final("EXPOSE")
    port = int(expose.args)
    cli = pytest.importorskip("sigma_exporter.cli")
    serve = cli.main.commands["serve"]
    (listen,) = [p for p in serve.params if "--web.listen-address" in getattr(p, "opts", [])]
    assert f":{port}" == listen.default
    service = chart_values()["service"]
    assert isinstance(service, dict) and service["port"] == port


def test_runs_as_the_numeric_non_root_uid_of_the_chart() -> None:
    users = final("USER")
    assert len(users) == 1
    user, _, group = users[0].args.partition(":")
    assert user.isdigit() and group.isdigit(), "USER must be numeric for runAsNonRoot to be verifiable"
    uid, gid = int(user), int(group)
    assert uid != 0 and gid != 0
    order = [i.keyword for i in INSTRUCTIONS if i.stage == FINAL_STAGE]
    assert order.index("USER") < order.index("ENTRYPOINT")
    assert "RUN" not in order[order.index("USER") :], "nothing runs as root after USER"
    runs = " ".join(i.args for i in final("RUN"))
    assert f"--uid {uid}" in runs and f"--gid {gid}" in runs
    values = chart_values()
    for context in ("podSecurityContext", "securityContext"):
        section = values[context]
        assert isinstance(section, dict)
        assert (
            section["runAsUser"] == uid and section["runAsGroup"] == gid and section["runAsNonRoot"] is True
        )


def test_oci_labels_and_versions_agree() -> None:
    found = labels()
    for key in ("title", "description", "version", "revision", "created", "licenses", "base.name"):
        assert found.get(f"org.opencontainers.image.{key}"), f"missing org.opencontainers.image.{key}"
    assert found["org.opencontainers.image.title"] == "sigma-exporter"
    version_arg = found["org.opencontainers.image.version"]
    assert version_arg == "${VERSION}"
    project = pyproject()["project"]
    assert isinstance(project, dict)
    assert arg_defaults(FINAL_STAGE)["VERSION"] == project["version"]
    assert found["org.opencontainers.image.licenses"] == project["license"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == project["version"]


def test_parser_reads_continuations_and_stages() -> None:
    parsed = parse_dockerfile("FROM a AS b\n# c\nRUN x \\\n  # comment\n  && y\nFROM c\nUSER 1\n")
    assert [(i.stage, i.keyword, i.args) for i in parsed] == [
        (0, "FROM", "a AS b"),
        (0, "RUN", "x && y"),
        (1, "FROM", "c"),
        (1, "USER", "1"),
    ]


def test_the_state_store_default_lands_on_the_declared_volume_the_chart_mounts() -> None:
    (volume,) = final("VOLUME")
    declared = [PurePosixPath(p) for p in json.loads(volume.args)]
    workdirs = final("WORKDIR")
    workdir = PurePosixPath(workdirs[-1].args)
    from sigma_exporter.config.model import StateConfig
    from sigma_exporter.config.registry import sqlite_path

    database = workdir / sqlite_path(StateConfig().url)
    assert database.parent in declared, (database, declared)
    runs = " ".join(i.args for i in final("RUN"))
    user = final("USER")[0].args.split(":")[0]
    assert f"install -d -o {user} -g {user}" in runs and str(database.parent) in runs  # writable by the user
    from tests.support.chart import mount_for, render_file

    mount, _ = mount_for(render_file(None), database)
    assert PurePosixPath(mount["mountPath"]) == database.parent
