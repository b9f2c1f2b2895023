#!/usr/bin/env bash
# Runs the Traefik + pointsman + demo stack of traefik/compose.yml on images built here, so it
# works on a machine that cannot pull images (on one that can, `cd traefik && docker compose
# up -d --build` builds from source instead).
#
#   scripts/stack.sh up       build the images, start the stack, wait until blue answers
#   scripts/stack.sh down     stop it (add -v to forget the roles)
#   scripts/stack.sh ARGS…    any other compose command, e.g. `exec pointsman pointsman status`
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/traefik"

if command -v docker-compose >/dev/null 2>&1; then compose=(docker-compose); else compose=(docker compose); fi
export TRAEFIK_IMAGE="${TRAEFIK_IMAGE:-pointsman-traefik:dev}"
export POINTSMAN_IMAGE="${POINTSMAN_IMAGE:-pointsman:dev}"
export DEMO_IMAGE="${DEMO_IMAGE:-pointsman-demo:dev}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-pointsman}"

case "${1:-up}" in
up)
    "$root/scripts/build-images.sh"
    "${compose[@]}" up -d --no-build
    port="${WEB_PORT:-80}"
    for _ in $(seq 1 60); do
        if out="$(curl -fsS -H 'Host: demo.localhost' "http://127.0.0.1:$port/" 2>/dev/null)"; then
            echo "stack is up: http://demo.localhost:$port/ answers: $out"
            echo "next: curl -b pointsman-demo=candidate http://demo.localhost:$port/   (the candidate)"
            echo "      scripts/stack.sh exec pointsman pointsman promote demo"
            exit 0
        fi
        sleep 0.5
    done
    echo "stack.sh: the demo did not answer on 127.0.0.1:$port within 30 s; see: scripts/stack.sh logs" >&2
    exit 1
    ;;
*)
    exec "${compose[@]}" "$@"
    ;;
esac
