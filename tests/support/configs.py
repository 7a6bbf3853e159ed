"""Config documents for tests: `config_text` (the YAML an exporter under test reads: the simulator's sample
credentials, short timeouts), GOOD (every key of the contract), and copies of GOOD with one key changed."""

from __future__ import annotations

from typing import Any

import yaml

from tests.support.scenarios import CLIENT_ID, CLIENT_TOKEN


def config_text(
    url: str, *, reports: list[Any] | None = None, groups: list[Any] | None = None, **extra: Any
) -> str:
    document: dict[str, Any] = {
        "sigma": {
            "url": url,
            "auth": {"type": "apikey", "client_id": CLIENT_ID, "client_token": CLIENT_TOKEN},
            "timeout_seconds": 2,
        },
        "poll": {"interval_seconds": 5, "concurrency": 4},
        "references": {"reports": reports or [], "groups": groups or []},
    }
    for key, value in extra.items():
        section, _, name = key.partition("__")
        document.setdefault(section, {})
        if name:
            document[section][name] = value
        else:
            document[section] = value
    return yaml.safe_dump(document, sort_keys=False)


GOOD: dict[str, Any] = {
    "sigma": {
        "url": "http://sigma.example.com:9081/sigma/rest/reports",
        "params_in": "query",
        "auth": {"type": "apikey", "client_id": "8HIG1002H6", "client_token": "plain"},
        "timeout_seconds": 5,
        "tls": {"ca_file": None, "insecure_skip_verify": False},
    },
    "poll": {"interval_seconds": 30, "concurrency": 3, "final_recheck_seconds": 600},
    "metrics": {"status_series": "current"},
    "references": {
        "reports": ["ref-1", {"reference": "ref-2", "labels": {"team": "finance"}}],
        "groups": ["grp-1"],
    },
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(yaml.safe_dump(GOOD))
    node = document
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return document


DELETE = object()
