#!/bin/sh
# Checks herald's Prometheus artefacts with promtool, for .ci/run and humans.
#
#   deploy/prometheus/check.sh [METRICS_FILE_OR_URL ...]
#
# 1. promtool check rules herald-alerts.yml   (syntax, templates)
#    promtool check config prometheus.yml    (the example scrape configuration)
# 2. promtool test rules herald-alerts.test.yml (firing/not-firing unit tests)
# 3. for each argument: promtool check metrics on a text exposition, either a
#    file or an http(s):// URL scraped with curl (e.g. a running
#    `herald consume --metrics-addr 127.0.0.1:9464` -> http://127.0.0.1:9464/metrics).
#
# promtool comes from Debian's `prometheus` package. When it is missing this
# script fails with an install hint; set HERALD_INSTALL_PROMTOOL=1 to let it
# run `apt-get install -y prometheus` itself (needs root).
set -eu

dir=$(cd "$(dirname "$0")" && pwd)

if ! command -v promtool >/dev/null 2>&1; then
    if [ "${HERALD_INSTALL_PROMTOOL:-0}" = 1 ]; then
        echo "check.sh: promtool missing, installing Debian's prometheus package" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "check.sh: promtool not found on PATH." >&2
        echo "  install it: apt-get install -y prometheus   (or rerun with HERALD_INSTALL_PROMTOOL=1)" >&2
        exit 127
    fi
fi

echo "== promtool check rules" >&2
promtool check rules "$dir/herald-alerts.yml"

echo "== promtool check config (example scrape configuration)" >&2
promtool check config "$dir/prometheus.yml"

echo "== promtool test rules" >&2
# Rule file paths in the test file are relative to the test file's directory.
(cd "$dir" && promtool test rules herald-alerts.test.yml)

for target in "$@"; do
    echo "== promtool check metrics $target" >&2
    case "$target" in
        http://* | https://*)
            tmp=$(mktemp)
            if ! curl -fsS "$target" -o "$tmp"; then
                rm -f "$tmp"
                echo "check.sh: could not scrape $target" >&2
                exit 1
            fi
            status=0
            promtool check metrics <"$tmp" || status=$?
            rm -f "$tmp"
            [ "$status" -eq 0 ] || exit "$status"
            ;;
        *)
            promtool check metrics <"$target"
            ;;
    esac
done
echo "check.sh: all promtool checks passed" >&2
