"""`--web.external-url`: the exporter's address as its users reach it (directly, or through a proxy that adds
a path). The links in alerts and dashboards are made from it; the exporter's own routes do not move. Pure."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

FLAG: Final = "--web.external-url"
#: Listen hosts that mean "every interface": the default URL names the machine instead.
WILDCARD_HOSTS: Final = frozenset({"", "0.0.0.0", "::"})


class ExternalUrlError(ValueError):
    """A value of --web.external-url that cannot make links."""


def default_external_url(
    listen: tuple[str, int], fqdn: Callable[[], str] = socket.getfqdn, *, tls: bool = False
) -> str:
    """As Prometheus: `http://<host>:<listen port>/` (`https` when the web config turns TLS on), the host
    being this machine's FQDN when the exporter listens on every interface, else the listen host itself
    (`127.0.0.1:9842` gives http://127.0.0.1:9842/)."""
    host, port = listen
    if host in WILDCARD_HOSTS:
        host = fqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}/"


def external_url(value: str | None, listen: tuple[str, int], fqdn: Callable[[], str] = socket.getfqdn) -> str:
    """The external URL normalised to end in "/" (a path prefix is kept: `https://h/sigma` gives
    `https://h/sigma/`), or the default for an empty or missing value. Raises ExternalUrlError naming the
    flag for anything but an absolute http or https URL without user, query or fragment."""
    if not value:
        return default_external_url(listen, fqdn)
    problem = _problem(value)
    if problem:
        raise ExternalUrlError(
            f"{FLAG} {value!r}: {problem}; expected an absolute http:// or https:// URL without a query or "
            "fragment, such as https://sigma-exporter.example.com/ or https://gateway.example.com/sigma/"
        )
    scheme, rest = value.split(":", 1)
    return f"{scheme.lower()}:{rest.rstrip('/')}/"


def _problem(value: str) -> str:
    if any(char.isspace() or not char.isprintable() for char in value):
        return "contains a space or a control character"
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        return "not an http or https URL"
    if not parts.hostname:
        return "has no host"
    if "?" in value or "#" in value:
        return "has a query or a fragment"
    if parts.username is not None:
        return "carries a user (links end up in alerts and dashboards)"
    try:
        parts.port  # noqa: B018 - it raises for a port that is not a number in 0-65535
    except ValueError:
        return "has an invalid port"
    return ""
