#!/usr/bin/env bash
# Print the absolute path of a python with the `prometheus-client` package on the last line of
# stdout: the tests parse pointsman's /metrics with its OpenMetrics and Prometheus text parsers
# (a real parser, not ours).
#
# The package is installed into a venv at target/test-venv, once; later runs only print the path.
# Env: TEST_VENV (default <repo>/target/test-venv).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TEST_VENV:-$root/target/test-venv}"
python="$venv/bin/python"

if ! "$python" -c 'import prometheus_client' >/dev/null 2>&1; then
    if [ ! -x "$python" ]; then
        echo "creating venv $venv" >&2
        python3 -m venv "$venv" >&2
    fi
    echo "installing prometheus-client into $venv" >&2
    "$python" -m pip install --disable-pip-version-check -q "prometheus-client>=0.20" >&2
fi
echo "$python"
