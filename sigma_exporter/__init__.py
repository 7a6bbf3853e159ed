"""Prometheus exporter for the Sigma report engine."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sigma-exporter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
