"""A config document with every key of the contract (GOOD), and copies of it with one key changed."""

from __future__ import annotations

from typing import Any

import yaml

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
