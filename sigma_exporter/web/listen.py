"""`--web.listen-address`: HOST:PORT, :PORT or [V6]:PORT."""

from __future__ import annotations


class ListenAddressError(ValueError):
    """An address that is not HOST:PORT, :PORT or [V6]:PORT with a port in 0-65535."""

    pass


def parse_listen_address(address: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all interfaces) or `[V6]:PORT`."""
    host, sep, port_text = address.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ListenAddressError(f"invalid listen address {address!r}: expected HOST:PORT or :PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)
