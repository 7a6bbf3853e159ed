"""Configuration: every contract key, secrets precedence, and errors that name file, key and problem.
(The check-config command as a process: tests/integration/cli/test_check_config.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sigma_exporter.config.load import ConfigError, load_config, parse_config
from tests.support.configs import DELETE, GOOD, with_change


def test_full_contract_parses() -> None:
    config = parse_config(GOOD, "c.yml", environ={})
    assert config.sigma.params_in == "query"
    assert config.sigma.auth.client_token is not None and config.sigma.auth.client_token.reveal() == "plain"
    assert (config.poll.interval_seconds, config.poll.concurrency, config.poll.final_recheck_seconds) == (
        30,
        3,
        600,
    )
    assert config.metrics.status_series == "current"
    refs = config.references.references
    assert [(r.reference, r.kind, r.labels) for r in refs] == [
        ("ref-1", "report", ()),
        ("ref-2", "report", (("team", "finance"),)),
        ("grp-1", "group", ()),
    ]


def test_defaults() -> None:
    config = parse_config(
        {"sigma": with_change("sigma.params_in", DELETE)["sigma"], "references": {"reports": ["a"]}},
        "c",
        environ={},
    )
    assert config.sigma.params_in == "body"
    assert (config.poll.interval_seconds, config.poll.concurrency, config.poll.final_recheck_seconds) == (
        60,
        8,
        900,
    )
    assert config.metrics.status_series == "all"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("sigma.colour", "blue", "c.yml: sigma.colour: unknown key"),
        ("poll.intervall_seconds", 5, "c.yml: poll.intervall_seconds: unknown key"),
        ("poll.interval_seconds", "soon", "c.yml: poll.interval_seconds: should be a number, got a string"),
        ("poll.concurrency", 0, "c.yml: poll.concurrency: should be between 1 and 256, got 0"),
        ("poll.concurrency", 2.5, "c.yml: poll.concurrency: should be a whole number"),
        ("sigma.url", "ftp://sigma", "c.yml: sigma.url: should be an http:// or https:// URL"),
        ("sigma.url", "not a url", "c.yml: sigma.url: should be an http:// or https:// URL"),
        ("sigma.url", "http://u:p@sigma/x", "c.yml: sigma.url: must not carry credentials"),
        ("sigma.url", DELETE, "c.yml: sigma.url: is required"),
        ("sigma.params_in", "header", "c.yml: sigma.params_in: should be one of body, query"),
        ("sigma.auth.type", "oauth", "c.yml: sigma.auth.type: should be one of apikey, basic, token"),
        ("sigma.auth.client_token", DELETE, "c.yml: sigma.auth.client_token: is required for type apikey"),
        (
            "sigma.auth.client_token_file",
            "/nonexistent/token",
            "c.yml: sigma.auth.client_token_file: secret file /nonexistent/token does not exist",
        ),
        (
            "sigma.tls.insecure_skip_verify",
            "yes",
            "c.yml: sigma.tls.insecure_skip_verify: should be true or false",
        ),
        (
            "sigma.tls.ca_file",
            "/nonexistent/ca.pem",
            "c.yml: sigma.tls.ca_file: file /nonexistent/ca.pem does not exist",
        ),
        ("sigma.timeout_seconds", 120, "c.yml: sigma.timeout_seconds: 120 exceeds poll.interval_seconds 30"),
        ("metrics.status_series", "some", "c.yml: metrics.status_series: should be one of all, current"),
        ("references.reports", "ref-1", "c.yml: references.reports: should be a list, got a string"),
        ("references.reports", ["a b"], "c.yml: references.reports[0]: 'a b' is not a reference number"),
        ("references.reports", ["a", "a"], "c.yml: references.reports[1]: reference a is listed twice"),
        (
            "references.reports",
            [{"reference": "x", "labels": {"1bad": "v"}}],
            "labels.1bad: is not a valid Prometheus label name",
        ),
        ("references.reports", [{"reference": "x", "labels": {"status": "v"}}], "labels.status: is reserved"),
        (
            "references.reports",
            [{"reference": "x", "labels": {"report_url": "https://elsewhere/"}}],
            "c.yml: references.reports[0].labels.report_url: is reserved",
        ),
        (
            "references.reports",
            [{"reference": "x", "team": "f"}],
            "c.yml: references.reports[0].team: unknown key",
        ),
        ("references.files", [""], "c.yml: references.files[0]: should be a file path or glob"),
        ("poll", ["interval"], "c.yml: poll: should be a mapping, got a list"),
    ],
)
def test_errors_name_file_key_and_problem(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(with_change(path, value), "c.yml", environ={})
    assert message in str(info.value)


def test_secret_precedence_file_then_plain_then_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n")
    env = {"SIGMA_CLIENT_TOKEN": "from-env"}
    both = with_change("sigma.auth.client_token_file", str(secret_file))
    assert parse_config(both, "c", environ=env).sigma.auth.client_token.reveal() == "from-file"  # type: ignore[union-attr]
    assert parse_config(GOOD, "c", environ=env).sigma.auth.client_token.reveal() == "plain"  # type: ignore[union-attr]
    env_only = with_change("sigma.auth.client_token", DELETE)
    assert parse_config(env_only, "c", environ=env).sigma.auth.client_token.reveal() == "from-env"  # type: ignore[union-attr]


def test_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        parse_config(with_change("sigma.auth.client_token_file", str(empty)), "c", environ={})


def test_secrets_print_masked() -> None:
    config = parse_config(GOOD, "c", environ={})
    assert "plain" not in repr(config) and "plain" not in str(config)
    assert "<secret>" in repr(config)


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("sigma:\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yml: invalid YAML at line \d+"):
        load_config(str(bad))
    dup = tmp_path / "dup.yml"
    dup.write_text("sigma: {}\nsigma: {}\n")
    with pytest.raises(ConfigError, match=r"dup.yml: line 2: duplicate key 'sigma'"):
        load_config(str(dup))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.yml"))


def test_nothing_to_watch_is_valid_only_when_runs_can_be_registered(tmp_path: Path) -> None:
    from sigma_exporter.config.load import watch_problem

    base = {
        "sigma": {"url": "http://sigma:9081/r", "auth": {"type": "token", "token": "t"}},
        "references": {"reports": [], "groups": []},
    }
    empty = parse_config(base, "c.yml", {})
    problem = watch_problem(empty, web_users=False)
    assert problem is not None and str(problem) == (
        "c.yml: references: no reports, groups, files or schedules to watch, and no way to register runs "
        "(set api.token_file, or basic_auth_users in --web.config.file)"
    )
    assert watch_problem(empty, web_users=True) is None
    token = tmp_path / "api-token"
    token.write_text("0123456789abcdef-api\n")
    with_api = parse_config({**base, "api": {"token_file": str(token)}}, "c.yml", {})
    assert watch_problem(with_api, web_users=False) is None
    assert with_api.api.token is not None and "0123456789abcdef" not in repr(with_api)
