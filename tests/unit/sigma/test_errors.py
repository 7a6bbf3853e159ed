"""Sigma errors (sigma/errors.py), pure: a held token failure can be copied (the token provider re-raises
copies of it)."""

from __future__ import annotations

import copy

import pytest

from sigma_exporter.sigma.errors import FailureReplyError, ServerError, SigmaError, UnauthorizedError


@pytest.mark.parametrize(
    "error",
    [UnauthorizedError("m", 401, "SIG-AUTH-401"), ServerError("m", 503), FailureReplyError("m", "E", 500)],
)
def test_held_token_failures_can_be_copied(error: SigmaError) -> None:
    # Regression: the token provider re-raises copy.copy() of a held failure; for HTTP status errors that
    # raised TypeError (their __init__ needs `status`), which escaped every check for 2 s after a 401.
    copied = copy.copy(error)
    assert type(copied) is type(error) and copied.__dict__ == error.__dict__ and str(copied) == "m"
    assert copied.reason == error.reason
