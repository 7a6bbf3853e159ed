"""What ships around the package: the Helm chart (helm), the Dockerfile (hadolint), the Grafana dashboards
and the alert rules (promtool)."""
