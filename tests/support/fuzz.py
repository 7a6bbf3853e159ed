"""Hypothesis settings shared by the fuzz tests (tests/unit/*/test_fuzz_*.py) and the strategies of outside
input they share: texts with stray spaces and lone surrogates, scalars, anything JSON- or YAML-shaped.

Examples per test: $SIGMA_FUZZ_EXAMPLES (default 200; `make fuzz` runs 10000). Under CI=true the runs are
derandomized so that a failure reproduces.
"""

from __future__ import annotations

import os
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.support.binaries import IN_CI

EXAMPLES = int(os.environ.get("SIGMA_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=IN_CI,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
if IN_CI:
    FUZZ = settings(FUZZ, database=None)
#: pytest-timeout's default (120 s) is for one test; a fuzz test's time grows with its examples.
FUZZ_TIMEOUT = pytest.mark.timeout(120 + EXAMPLES * 0.1)


# --- strategies of outside input ----------------------------------------------------------------------------------
spaces = st.text(alphabet=" \t\n\r\u00a0\u3000", max_size=3)
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.ascii_letters + string.digits + "-_ ", max_size=40),
    st.text(min_size=250, max_size=300),  # around MAX_TEXT: the cut must not leave a space at the end
    st.builds(lambda a, t, b: a + t + b, spaces, st.text(max_size=30), spaces),
    # lone surrogates: JSON's "\ud800" escapes decode to them
    st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), min_size=1, max_size=4),
)
digit_strings = st.one_of(
    st.from_regex(r"\A\s?[0-9]{1,20}\s?\Z"),
    st.text(alphabet=string.digits, min_size=4000, max_size=4500),  # int() refuses > 4300 digits
)
scalars = st.one_of(
    texts,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=10**300, max_value=10**301),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    digit_strings,
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the realistic value, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, anything)
