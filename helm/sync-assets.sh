#!/bin/sh
# Copy the alert rules and Grafana dashboards into the chart (Helm reads only files inside the chart).
# Run after changing prometheus/alerts.yml or grafana/dashboards/*.json; tests/deploy/chart/test_chart_monitoring.py fails
# while the copies differ from the originals.
#
#   helm/sync-assets.sh           copy
#   helm/sync-assets.sh --check   exit 1 (listing the files) when a copy is stale
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/helm/sigma-exporter/files"
check=false
[ "${1:-}" = "--check" ] && check=true

stale=0
sync() {  # sync SOURCE DESTINATION
    if [ ! -f "$1" ]; then
        echo "missing: $1" >&2
        stale=1
        return
    fi
    if ! cmp -s "$1" "$2" 2>/dev/null; then
        if $check; then
            echo "stale: ${2#"$root"/} (differs from ${1#"$root"/})" >&2
            stale=1
        else
            cp "$1" "$2"
            echo "copied ${1#"$root"/} -> ${2#"$root"/}"
        fi
    fi
}

mkdir -p "$chart/dashboards"
sync "$root/prometheus/alerts.yml" "$chart/alerts.yml"
for dashboard in "$root"/grafana/dashboards/*.json; do
    [ -e "$dashboard" ] || continue
    sync "$dashboard" "$chart/dashboards/$(basename "$dashboard")"
done
# Dashboards removed from grafana/dashboards/ leave the chart too.
for copy in "$chart"/dashboards/*.json; do
    [ -e "$copy" ] || continue
    if [ ! -f "$root/grafana/dashboards/$(basename "$copy")" ]; then
        if $check; then
            echo "stale: ${copy#"$root"/} (no longer in grafana/dashboards/)" >&2
            stale=1
        else
            rm "$copy"
            echo "removed ${copy#"$root"/}"
        fi
    fi
done
exit "$stale"
