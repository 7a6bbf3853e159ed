"""`sigma-exporter check-config` and `serve --help` as a user runs them (real processes): reference files
checked too, errors naming file and key, the environment twin of --config.file, every option with its
environment variable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support.configs import GOOD, with_change
from tests.support.process import EXPORTER, run_command


def run_check(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_command("check-config", config, *args)


def test_check_config_command(tmp_path: Path) -> None:
    refs_dir = tmp_path / "references.d"
    refs_dir.mkdir()
    (refs_dir / "a.yml").write_text("reports: [file-ref-1, {reference: file-ref-2, labels: {team: ops}}]\n")
    document = with_change("references.files", [str(refs_dir / "*.yml")])
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump(document))
    result = run_check(good)
    assert result.returncode == 0, result.stderr
    assert "OK: 5 references" in result.stdout and "1 reference files" in result.stdout
    assert "plain" not in result.stdout + result.stderr

    (refs_dir / "b.yml").write_text("reports: [ok]\ngroupz: [x]\n")
    result = run_check(good)
    assert result.returncode == 1
    assert f"{refs_dir / 'b.yml'}: groupz: unknown key" in result.stderr

    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(with_change("poll.concurrency", -1)))
    result = run_check(bad)
    assert result.returncode == 1
    assert "bad.yml: poll.concurrency: should be between 1 and 256, got -1" in result.stderr


def test_check_config_env_twin(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump(GOOD))
    result = subprocess.run(
        [*EXPORTER, "check-config"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"SIGMA_EXPORTER_CONFIG_FILE": str(good), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert str(good) in result.stdout


def test_help_documents_every_option_and_its_environment_variable() -> None:
    result = subprocess.run(
        [*EXPORTER, "serve", "--help"], capture_output=True, text=True, timeout=30, check=True
    )
    for flag in (
        "--config.file",
        "--web.listen-address",
        "--web.config.file",
        "--log.level",
        "--log.format",
        "--shard.index",
        "--shard.count",
        "--web.open-health-endpoints",
    ):
        assert flag in result.stdout
        env = "SIGMA_EXPORTER_" + flag.lstrip("-").upper().replace(".", "_").replace("-", "_")
        assert env in result.stdout.replace("\n", " ").replace(" ", "") or env in result.stdout
