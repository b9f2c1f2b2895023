# Shared by bench/run.sh and bench/baseline-flip.sh. Source it; it defines functions only.
#
# Every container and network the benchmark creates carries the label io.pointsman.bench=$RUN,
# so cleanup can find them all. App containers use the label prefix `pmbench` (pointsman runs
# with --label-prefix pmbench), so controllers of other checkouts on this Docker ignore them and
# ours ignores theirs.

PREFIX=pmbench
DEMO_IMAGE=pointsman-demo:dev
TRAEFIK_IMAGE=pointsman-traefik:dev

say() { echo "bench: $*" >&2; }
die() { say "error: $*"; exit 2; }

# now_ms: wall-clock milliseconds with microsecond precision, no subprocess.
now_ms() { local t=${EPOCHREALTIME/./}; echo "$((t / 1000)).$(printf %03d $((t % 1000)))"; }

container_ip() {
    docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | awk '{print $1}'
}

# wait_healthy NAME [TIMEOUT_S]: until Docker reports the container healthy.
wait_healthy() {
    local name="$1" deadline=$((SECONDS + ${2:-30})) status
    while :; do
        status="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$name" 2>/dev/null || echo gone)"
        case "$status" in
            healthy | none) return 0 ;;
            gone) die "container $name disappeared" ;;
        esac
        [ "$SECONDS" -lt "$deadline" ] || die "container $name not healthy after ${2:-30}s (status $status)"
        sleep 0.1
    done
}

# Baseline ("label routing" on Traefik's Docker provider): the role is a label, so a slot's
# role changes only by recreating its container. Router `web` (public entrypoint) serves every
# container labelled stable; `web-candidate` (preview entrypoint) the candidate.
baseline_name() { echo "pmbench-$RUN-base-$1-$2"; } # SLOT ROLE

# start_baseline ROLE SLOT
start_baseline() {
    local role="$1" slot="$2" router service entrypoint
    if [ "$role" = stable ]; then router=web entrypoint=web; else router=web-candidate entrypoint=preview; fi
    service="$router"
    docker run -d -q --name "$(baseline_name "$slot" "$role")" --network "$NET" \
        -e SLOT="$slot" -e VERSION="$slot" \
        -l io.pointsman.bench="$RUN" \
        -l traefik.enable=true \
        -l "traefik.http.routers.$router.rule=Host(\`web.bench\`)" \
        -l "traefik.http.routers.$router.entrypoints=$entrypoint" \
        -l "traefik.http.routers.$router.service=$service" \
        -l "traefik.http.services.$service.loadbalancer.server.port=80" \
        "$DEMO_IMAGE" >/dev/null
}
