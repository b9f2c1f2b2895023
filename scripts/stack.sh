#!/usr/bin/env bash
# Runs the Traefik + pointsman + demo stack of traefik/compose.yml on images built here, so it
# works on a machine that cannot pull images (on one that can, `cd traefik && docker compose
# up -d --build` builds from source instead).
#
#   scripts/stack.sh up       build the images, start the stack, wait until blue answers
#   scripts/stack.sh down     stop it (add -v to forget the roles)
#   scripts/stack.sh ARGS…    any other compose command, e.g. `exec pointsman pointsman status`
#
# It runs compose in traefik/, so it acts on the same project as a plain `docker compose` run
# there: `pointsman`, from traefik/.env (or COMPOSE_PROJECT_NAME from the environment, for both).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/traefik"

if command -v docker-compose >/dev/null 2>&1; then compose=(docker-compose); else compose=(docker compose); fi
export TRAEFIK_IMAGE="${TRAEFIK_IMAGE:-pointsman-traefik:dev}"
export POINTSMAN_IMAGE="${POINTSMAN_IMAGE:-pointsman:dev}"
export DEMO_IMAGE="${DEMO_IMAGE:-pointsman-demo:dev}"

case "${1:-up}" in
up)
    "$root/scripts/build-images.sh"
    "${compose[@]}" up -d --no-build
    # The ports Docker published (WEB_PORT=0 or POINTSMAN_PORT=0 pick free ones).
    web="$("${compose[@]}" port traefik 80 | tail -n1)"
    page="$("${compose[@]}" port pointsman 9191 | tail -n1)"
    port="${web##*:}"
    for _ in $(seq 1 60); do
        if out="$(curl -fsS -H 'Host: demo.localhost' "http://$web/" 2>/dev/null)"; then
            echo "stack is up: http://demo.localhost:$port/ answers: $out"
            echo "status page: http://$page/"
            echo "next: curl -b pointsman-demo=candidate http://demo.localhost:$port/   (the candidate)"
            echo "      cd traefik && docker compose exec pointsman pointsman promote demo"
            exit 0
        fi
        sleep 0.5
    done
    echo "stack.sh: the demo did not answer on $web within 30 s; see: scripts/stack.sh logs" >&2
    exit 1
    ;;
*)
    exec "${compose[@]}" "$@"
    ;;
esac
