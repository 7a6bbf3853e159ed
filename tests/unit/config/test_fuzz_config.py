"""Property-based tests (hypothesis) of the config loader (config/load.py) on arbitrary YAML-shaped documents
and arbitrary bytes: a `Config` or a `ConfigError`, nothing else; what it accepts is within bounds.

Examples per test: $SIGMA_FUZZ_EXAMPLES (default 200; `make fuzz` runs 10000); see tests/support/fuzz.py.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigma_exporter.config.load import Config, ConfigError, Reference, load_config, parse_config
from sigma_exporter.config.model import PollConfig
from tests.support.fuzz import FUZZ, FUZZ_TIMEOUT, anything, maybe, scalars, texts

pytestmark = [FUZZ_TIMEOUT, pytest.mark.usefixtures("quiet_logs")]


# --- the config loader -----------------------------------------------------------------------------------------------
def config_key(names: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(names), st.text(max_size=12))


numbers = st.one_of(
    st.integers(-10, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.05, 0.5, 60, 301, 86401]),
)


auth_docs = st.dictionaries(
    config_key(
        [
            "type",
            "client_id",
            "client_token",
            "client_token_file",
            "username",
            "password",
            "password_file",
            "token",
            "token_file",
        ]
    ),
    st.one_of(st.sampled_from(["apikey", "basic", "token", "x", "/nonexistent/secret", "a\x00b"]), scalars),
    max_size=6,
)


reference_items = st.one_of(
    texts,
    st.integers(),
    st.fixed_dictionaries(
        {"reference": maybe(texts)},
        optional={
            "labels": maybe(
                st.dictionaries(
                    st.one_of(st.sampled_from(["team", "kind", "__x", "9a", "env"]), st.text(max_size=6)),
                    scalars,
                    max_size=3,
                )
            )
        },
    ),
    anything,
)


config_docs = st.fixed_dictionaries(
    {},
    optional={
        "sigma": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "url": maybe(
                        st.sampled_from(
                            [
                                "http://sigma:9081/sigma/rest/reports",
                                "https://h",
                                "ftp://h",
                                "http://u:p@h",
                                "http://h:99999",
                                "http://h/?q=1",
                                "http://[::1",
                            ]
                        )
                    ),
                    "auth": maybe(auth_docs),
                    "params_in": maybe(st.sampled_from(["body", "query", "form"])),
                    "timeout_seconds": maybe(numbers),
                    "max_reply_bytes": maybe(numbers),
                    "tls": maybe(
                        st.fixed_dictionaries(
                            {}, optional={"ca_file": maybe(texts), "insecure_skip_verify": scalars}
                        )
                    ),
                },
            )
        ),
        "poll": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "interval_seconds": maybe(numbers),
                    "concurrency": maybe(numbers),
                    "final_recheck_seconds": maybe(numbers),
                },
            )
        ),
        "metrics": maybe(
            st.fixed_dictionaries(
                {}, optional={"status_series": maybe(st.sampled_from(["all", "current", "none"]))}
            )
        ),
        "references": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "reports": maybe(st.lists(reference_items, max_size=4)),
                    "groups": maybe(st.lists(reference_items, max_size=4)),
                    "files": maybe(
                        st.lists(maybe(st.sampled_from(["/nonexistent/*.yml", "", "a\x00*"])), max_size=2)
                    ),
                },
            )
        ),
    },
)


environments = st.dictionaries(
    st.sampled_from(["SIGMA_CLIENT_TOKEN", "SIGMA_PASSWORD", "SIGMA_TOKEN"]), st.text(max_size=12), max_size=3
)


def assert_config(config: Config) -> None:
    poll: PollConfig = config.poll
    for value in (config.sigma.timeout_seconds, poll.interval_seconds, poll.final_recheck_seconds):
        assert math.isfinite(value) and value >= 0, value
    assert 0.05 <= config.sigma.timeout_seconds <= poll.interval_seconds
    assert 1 <= poll.concurrency <= 256
    assert config.sigma.params_in in ("body", "query")
    assert config.sigma.auth.type in ("apikey", "basic", "token")
    assert config.sigma.auth.secrets(), "an auth type without its secret"
    refs: list[Reference] = list(config.references.references)
    assert refs or config.references.files
    assert len({r.reference for r in refs}) == len(refs)
    for ref in refs:
        assert ref.kind in ("report", "group")
        assert ref.reference and not any(c.isspace() for c in ref.reference)
        ref.reference.encode("utf-8")
        for label, label_value in ref.labels:
            assert label not in ("reference", "kind", "status", "job", "instance")
            label_value.encode("utf-8")


def load(document: object, environ: dict[str, str]) -> Config | None:
    try:
        config = parse_config(document, "fuzz.yml", environ)
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yml: "), str(exc)
        return None
    assert_config(config)
    return config


@FUZZ
@given(document=config_docs, environ=environments)
def test_config_documents(document: object, environ: dict[str, str]) -> None:
    load(document, environ)


@FUZZ
@given(document=anything, environ=environments)
def test_config_of_any_shape(document: object, environ: dict[str, str]) -> None:
    load(document, environ)


YAML_PIECES = [
    "sigma:\n", "  url: http://h\n", "  auth: {type: token, token: t}\n", "poll: {interval_seconds: .nan}\n",
    "references:\n", "  reports: [a, b]\n", "  - x\n", "&a [*a]\n", "!!python/object:os.system ls\n", "key: 1\nkey: 2\n",
    '"\\ud800"\n', "? [a]\n: b\n", "\t", "- - -\n", "{", "}", "%YAML 1.1\n---\n", "...\n", "<<: *x\n", ":\n",
]  # fmt: skip


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from(YAML_PIECES), max_size=8).map(lambda p: "".join(p).encode()),
    )
)
def test_load_config_on_arbitrary_bytes(body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yml"
        path.write_bytes(body)
        try:
            config = load_config(str(path), environ={})
        except ConfigError as exc:
            assert str(exc).startswith(str(path)), str(exc)
            return
        assert_config(config)
