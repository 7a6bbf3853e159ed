"""The Grafana dashboards of sigma-exporter, built with grafana-foundation-sdk's typed builders: `kit` holds
what they share, and each other module one dashboard (`build()` returns it). Imported by
grafana/generate.py only; imports nothing of sigma_exporter (the dashboards depend on the metric names of
docs/metrics.md, not on the code)."""
