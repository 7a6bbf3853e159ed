"""The link to the Sigma in force: a reload that changes `sigma:` or the pool size gets a new client (the old
one closed), any other reload keeps the client and its token."""

from __future__ import annotations

from sigma_exporter.sigma.link import SigmaLink
from sigma_exporter.sigma.stats import ApiStats
from tests.support.factories import config


def test_a_new_client_only_when_sigma_or_the_pool_changes() -> None:
    first = config()
    link = SigmaLink(first, ApiStats())
    link.start()
    client = link.client()
    link.use(config(poll={"interval_seconds": 30}))  # nothing of Sigma changed
    assert link.client() is client
    link.use(config(poll={"interval_seconds": 30, "concurrency": 2}))
    second = link.client()
    assert second is not client
    link.use(
        config(
            sigma={
                "url": "http://other.invalid/sigma/rest/reports",
                "auth": {"type": "token", "token": "fixed-token-x"},
            },
            poll={"concurrency": 2},
        )
    )
    assert link.client() is not second
    link.stop(1.0)
