"""--web.external-url: normalised, defaulted from the listen address as Prometheus does, refused loudly."""

from __future__ import annotations

import pytest

from sigma_exporter.web.external import ExternalUrlError, default_external_url, external_url


def fqdn() -> str:
    return "exporter-1.example.com"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://sigma.example.com", "https://sigma.example.com/"),
        ("https://sigma.example.com/", "https://sigma.example.com/"),
        ("http://gw.example.com:8080/sigma", "http://gw.example.com:8080/sigma/"),
        ("https://gw.example.com/a/sigma/", "https://gw.example.com/a/sigma/"),
        ("HTTPS://gw.example.com/x//", "https://gw.example.com/x/"),
        ("http://[2001:db8::1]:9842/", "http://[2001:db8::1]:9842/"),
    ],
)
def test_a_url_is_kept_with_its_path_prefix_and_ends_in_a_slash(value: str, expected: str) -> None:
    assert external_url(value, ("0.0.0.0", 9842), fqdn) == expected


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        (("0.0.0.0", 9842), "http://exporter-1.example.com:9842/"),
        (("::", 9100), "http://exporter-1.example.com:9100/"),
        (("127.0.0.1", 40123), "http://127.0.0.1:40123/"),
        (("::1", 9842), "http://[::1]:9842/"),
        (("exporter.internal", 9842), "http://exporter.internal:9842/"),
    ],
)
def test_the_default_names_this_host_and_the_listen_port(listen: tuple[str, int], expected: str) -> None:
    assert default_external_url(listen, fqdn) == expected
    assert external_url(None, listen, fqdn) == expected
    assert external_url("", listen, fqdn) == expected
    assert default_external_url(listen, fqdn, tls=True) == expected.replace("http://", "https://", 1)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("sigma.example.com", "not an http or https URL"),
        ("/sigma/", "not an http or https URL"),
        ("ftp://sigma.example.com/", "not an http or https URL"),
        ("https:///sigma", "has no host"),
        ("https://sigma.example.com/?a=1", "has a query or a fragment"),
        ("https://sigma.example.com/?", "has a query or a fragment"),
        ("https://sigma.example.com/#top", "has a query or a fragment"),
        ("https://user:pw@sigma.example.com/", "carries a user"),
        ("https://sigma.example.com:99999/", "has an invalid port"),
        ("https://sigma.example.com:port/", "has an invalid port"),
        ("https://sigma.example.com/a b", "contains a space or a control character"),
        ("https://sigma.example.com/\n", "contains a space or a control character"),
    ],
)
def test_anything_else_is_refused_naming_the_flag(value: str, problem: str) -> None:
    with pytest.raises(ExternalUrlError) as info:
        external_url(value, ("0.0.0.0", 9842), fqdn)
    message = str(info.value)
    assert message.startswith(f"--web.external-url {value!r}: {problem}")
    assert "absolute http:// or https:// URL" in message
