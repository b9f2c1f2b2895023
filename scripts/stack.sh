#!/usr/bin/env bash
# Runs the Traefik + pointsman + demo stack of traefik/compose.yml on images built here, so it
# works on a machine that cannot pull images (on one that can, `cd traefik && docker compose
# up -d --build` builds from source instead).
#
#   scripts/stack.sh up       build the images, start the stack, wait until blue answers
#   scripts/stack.sh down     stop it (add -v to forget the roles)
#   scripts/stack.sh ARGS…    any other compose command, e.g. `exec pointsman pointsman status`
#   TAG=…                     images tagged TAG instead of dev (as scripts/build-images.sh)
#
#   scripts/stack.sh --redis up|down|ARGS…
#                             the same for the multi-host layout of traefik/redis/compose.yml
#                             (Redis, Traefik's Redis provider, pointsman run --store redis://…)
#
# It runs compose in traefik/ (traefik/redis/ with --redis), so it acts on the same project as a
# plain `docker compose` run there: `pointsman` from traefik/.env, `pointsman-redis` from
# traefik/redis/.env (or COMPOSE_PROJECT_NAME from the environment, for both).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

redis=0 redis_flag=
if [ "${1:-}" = --redis ]; then
    redis=1 redis_flag="--redis "
    shift
fi
if [ "$redis" = 1 ]; then cd "$root/traefik/redis"; else cd "$root/traefik"; fi

if command -v docker-compose >/dev/null 2>&1; then compose=(docker-compose); else compose=(docker compose); fi
# The images scripts/build-images.sh builds, tagged TAG (default dev) as there.
export TAG="${TAG:-dev}"
export TRAEFIK_IMAGE="${TRAEFIK_IMAGE:-pointsman-traefik:$TAG}"
export POINTSMAN_IMAGE="${POINTSMAN_IMAGE:-pointsman:$TAG}"
export DEMO_IMAGE="${DEMO_IMAGE:-pointsman-demo:$TAG}"
export REDIS_IMAGE="${REDIS_IMAGE:-pointsman-redis:$TAG}"

case "${1:-up}" in
up)
    if [ "$redis" = 1 ]; then
        command -v redis-server >/dev/null 2>&1 ||
            { echo "stack.sh: the Redis image is built from Debian's redis-server: apt-get install redis-server" >&2; exit 2; }
    fi
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
            if [ "$redis" = 1 ]; then
                echo "redis:       redis://$("${compose[@]}" port redis 6379 | tail -n1)/0"
                echo "next: curl -b pointsman-demo=candidate http://demo.localhost:$port/   (the candidate)"
                echo "      cd traefik/redis && docker compose exec pointsman pointsman promote demo"
            else
                echo "next: curl -b pointsman-demo=candidate http://demo.localhost:$port/   (the candidate)"
                echo "      cd traefik && docker compose exec pointsman pointsman promote demo"
            fi
            exit 0
        fi
        sleep 0.5
    done
    echo "stack.sh: the demo did not answer on $web within 30 s; see: $0 ${redis_flag}logs" >&2
    exit 1
    ;;
*)
    exec "${compose[@]}" "$@"
    ;;
esac
