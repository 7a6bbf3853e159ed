"""The connection pool to Sigma, with what requests would take from the environment: the proxy
(HTTP(S)_PROXY / NO_PROXY) and the CA bundle (sigma.tls.ca_file, else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE,
else certifi's). Resolved once, when a client is built; `doctor` verifies TLS against the same bundle."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_environ_proxies, select_proxy

from sigma_exporter.config.model import SigmaConfig


def ca_bundle(config: SigmaConfig) -> str | None:
    """The CA file or directory Sigma's certificate is verified against; None when verification is off."""
    if not config.tls.ca_file and config.tls.insecure_skip_verify:
        return None
    return (
        config.tls.ca_file
        or os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or DEFAULT_CA_BUNDLE_PATH
    )


def pool_manager(config: SigmaConfig, pool_size: int) -> urllib3.PoolManager:
    """A keep-alive pool for Sigma's URL, through the environment's proxy if requests would use one."""
    options: dict[str, object] = {"num_pools": 2, "maxsize": max(pool_size, 1), "retries": False}
    if urlsplit(config.url).scheme == "https":
        bundle = ca_bundle(config)
        if bundle is not None:
            options["cert_reqs"] = "CERT_REQUIRED"
            options["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
        else:
            options["cert_reqs"] = "CERT_NONE"
    proxy = select_proxy(config.url, get_environ_proxies(config.url))
    if proxy:
        return urllib3.ProxyManager(proxy, **options)  # type: ignore[arg-type]
    return urllib3.PoolManager(**options)  # type: ignore[arg-type]
