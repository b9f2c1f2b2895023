#!/usr/bin/env bash
# The zero-downtime benchmark (issue 4): pointsman vs relabel-by-recreate, through real Traefik.
#
#   bench/run.sh [--flips N] [--rate R] [--connections C] [--gap-ms MS] [--events N]
#                [--scale N] [--scale-events M] [--only "render flips events baseline scale"]
#                [--no-build]
#
# Defaults: 50 flips, 1000 requests/s over 8 keep-alive connections, 3000 ms between the end of
# one flip and the start of the next, 20 stop/start cycles for event latency, 1000 containers
# and 1000 events for the scale run. --no-build uses the release binaries and images already
# built. Results: a markdown table on stdout and in bench/results.md; raw data (per-response
# TSVs, logs, JSON) in target/bench/RUN/.
#
# Phases (all by default):
# - render:   `cargo bench --bench render` (render + write of 1,000 apps through the library).
# - flips:    Traefik (traefik/traefik.yml, file provider, default 2 s throttle) in a container
#             on a network of its own; demo containers web blue (stable) and green (candidate);
#             `pointsman run` on the host writing the directory Traefik watches; pointsman-load
#             sends the load through Traefik and runs N flips: `pointsman promote web` and
#             `pointsman rollback web` in turn. Controller RSS/CPU from /proc, idle and under load.
# - events:   the controller's Docker-event → file-renamed latency: stop/start a replica of
#             another app N times; Docker's event time (timeNano) against the controller's
#             `files updated` log line, which it writes after rename + directory fsync.
# - baseline: the same load and flips on a second Traefik with the Docker provider (same static
#             config, provider swapped), where a flip recreates containers (bench/baseline-flip.sh).
# - scale:    bench/scale.sh --containers N --events M (see `bench/scale.sh --help`; it also runs
#             alone, and can keep its fleet for the next run): N idle labelled demo containers
#             (N/2 apps of 2 slots, as many as memory allows); event → file renamed over M
#             pause/unpause events across apps (p50/p95/p99/max), controller RSS after the sync
#             and after the events, CLI promote wall time, full listing time, and the files
#             written by a restart and by periodic resyncs with nothing changed.
#
# Everything the run creates is labelled io.pointsman.bench=RUN and removed on exit, whatever
# happens (trap). Loads target only our own containers and stop by themselves.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source bench/lib.sh

FLIPS=50 RATE=1000 CONNECTIONS=8 GAP_MS=3000 EVENTS=20 SCALE=1000 SCALE_EVENTS=1000 IDLE_S=10
PHASES="render flips events baseline scale"
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --flips) FLIPS="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --gap-ms) GAP_MS="$2"; shift 2 ;;
        --events) EVENTS="$2"; shift 2 ;;
        --scale) SCALE="$2"; shift 2 ;;
        --scale-events) SCALE_EVENTS="$2"; shift 2 ;;
        --only) PHASES="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
phase() { [[ " $PHASES " == *" $1 "* ]]; }

export RUN="pmb$$"
export NET="pmbench-$RUN-net"
work="$root/target/bench/$RUN"
mkdir -p "$work"
metrics="$work/metrics.txt" # "key value" lines, read by bench/report.py
: >"$metrics"
metric() { echo "$1 $2" >>"$metrics"; }
metric idle_s "$IDLE_S"
# Background processes this script started and that still run; cleanup ends exactly these.
bg_pids=()
untrack() {
    local p keep=()
    for p in "${bg_pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    bg_pids=("${keep[@]}")
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${bg_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    local ids
    ids="$(docker ps -aq --filter "label=io.pointsman.bench=$RUN")"
    if [ -n "$ids" ]; then
        say "removing $(echo "$ids" | wc -l) container(s)"
        # One at a time: after many concurrent removals Docker 20.10 has kept a network's
        # endpoint count above zero here ("has active endpoints" with no container left), and
        # only a daemon restart clears that.
        echo "$ids" | xargs -r -n 1 docker rm -f >/dev/null 2>&1 || true
    fi
    local net tries
    for net in $(docker network ls -q --filter "label=io.pointsman.bench=$RUN"); do
        for tries in 1 2 3 4 5; do
            docker network rm "$net" >/dev/null 2>&1 && break
            sleep 2
        done
        docker network inspect "$net" >/dev/null 2>&1 &&
            say "warning: could not remove network $(docker network inspect -f '{{.Name}}' "$net"): $(docker network rm "$net" 2>&1 | head -n 1)"
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin="$root/target/release/pointsman"
load="$root/target/release/pointsman-load"

# ---- /proc sampling ------------------------------------------------------------------------------
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
proc_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# machine_ticks: "busy total" jiffies of all CPUs, from /proc/stat.
machine_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
# machine_busy_since "BUSY TOTAL": % of all cores busy since that sample (everything, us included).
machine_busy_since() {
    local a=($1) b=($(machine_ticks))
    awk -v b="$((b[0] - a[0]))" -v t="$((b[1] - a[1]))" 'BEGIN { printf "%.0f", t ? b / t * 100 : 0 }'
}
# cpu_since PID TICKS0 T0_MS: CPU % of one core since the sample (TICKS0, T0_MS).
cpu_since() {
    awk -v a="$2" -v b="$(proc_ticks "$1")" -v t0="$3" -v t1="$(now_ms)" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", (b - a) / hz / ((t1 - t0) / 1000) * 100 }'
}

# start_controller DIR LOG: `pointsman run` with debug logs as JSON; sets $ctl.
start_controller() {
    POINTSMAN_LOG=pointsman=debug "$bin" --dir "$1" --label-prefix "$PREFIX" --log-format json run --listen off 2>"$2" &
    ctl=$!
    bg_pids+=("$ctl")
    local deadline=$((SECONDS + 120))
    until grep -qs '"synced with Docker"' "$2"; do
        kill -0 "$ctl" 2>/dev/null || die "controller exited: $(tail -n 3 "$2")"
        [ "$SECONDS" -lt "$deadline" ] || die "controller did not sync within 120 s"
        sleep 0.05
    done
}
stop_controller() {
    kill -TERM "$ctl"
    wait "$ctl" || true
    untrack "$ctl"
}

# wait_for_file PATH
wait_for_file() {
    local deadline=$((SECONDS + 30))
    until [ -e "$1" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "$1 did not appear within 30 s"
        sleep 0.05
    done
}

# wait_routed IP SLOT: until Traefik answers for web.bench from SLOT.
wait_routed() {
    local deadline=$((SECONDS + 30))
    until curl -s -m 1 -D - -o /dev/null -H 'Host: web.bench' "http://$1/" | grep -qi "^x-slot: $2"; do
        [ "$SECONDS" -lt "$deadline" ] || die "Traefik at $1 does not route web.bench to $2 within 30 s"
        sleep 0.1
    done
}

# start_traefik NAME STATIC_CONFIG [docker args…]: Traefik in a container on $NET; prints its IP.
start_traefik() {
    local name="$1" config="$2"
    shift 2
    docker run -d -q --name "$name" --network "$NET" -l io.pointsman.bench="$RUN" \
        -v "$config:/etc/traefik/traefik.yml:ro" "$@" "$TRAEFIK_IMAGE" >/dev/null
    local ip deadline=$((SECONDS + 30))
    ip="$(container_ip "$name")"
    until [ "$(curl -s -m 1 "http://$ip:8080/ping" || true)" = OK ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "Traefik $name not answering /ping: $(docker logs --tail 5 "$name" 2>&1)"
        sleep 0.1
    done
    echo "$ip"
}

# event_cycles CONTAINER N EVENTS_OUT: stop and start a container N times, recording its Docker
# events as they happen (`docker events --since` replays only Docker's last 256 events, which a
# busy daemon overwrites within seconds).
event_cycles() {
    local c="$1" n="$2" out="$3" watcher
    docker events --filter "container=$c" --format '{{json .}}' >"$out" &
    watcher=$!
    bg_pids+=("$watcher")
    sleep 0.5
    for _ in $(seq "$n"); do
        docker stop -t 5 "$c" >/dev/null
        sleep 1
        docker start "$c" >/dev/null
        sleep 1
    done
    kill "$watcher"
    wait "$watcher" 2>/dev/null || true
    untrack "$watcher"
}

load_args=(--rate "$RATE" --connections "$CONNECTIONS" --gap-ms "$GAP_MS" --host web.bench --warmup-ms 3000)

# ---- build & conditions --------------------------------------------------------------------------
docker info >/dev/null 2>&1 || die "docker is not reachable"
if [ "$BUILD" = 1 ]; then
    say "building release binaries and images"
    cargo build --release --bin pointsman --bin pointsman-load 2>&1 | tail -n 1 >&2
    BINS=pointsman-demo IMAGES="demo traefik" scripts/build-images.sh
else
    say "--no-build: using $bin, $load and the images as they are"
fi
for f in "$bin" "$load"; do [ -x "$f" ] || die "$f is missing (run without --no-build)"; done
for i in "$DEMO_IMAGE" "$TRAEFIK_IMAGE"; do docker image inspect "$i" >/dev/null 2>&1 || die "image $i is missing"; done
traefik_version="$(docker run --rm "$TRAEFIK_IMAGE" version 2>/dev/null | awk '/^Version:/ {print $2}')"
{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)"
    echo "cpu $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "memory_gb $(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
    echo "kernel $(uname -r)"
    echo "docker $(docker version -f '{{.Server.Version}}')"
    echo "traefik ${traefik_version:-unknown}"
    echo "loadavg_start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "command bench/run.sh --flips $FLIPS --rate $RATE --connections $CONNECTIONS --gap-ms $GAP_MS --events $EVENTS --scale $SCALE --scale-events $SCALE_EVENTS"
} >"$work/conditions.txt"

docker network create --label io.pointsman.bench="$RUN" "$NET" >/dev/null

# ---- render bench ---------------------------------------------------------------------------------
if phase render; then
    say "render bench (cargo bench --bench render)"
    POINTSMAN_BENCH_OUT="$work/render.json" cargo bench --bench render 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)' >&2
fi

# ---- pointsman flips, then controller event latency -----------------------------------------------
if phase flips || phase events; then
    dyn="$work/dynamic"
    mkdir -p "$dyn"
    export POINTSMAN_DIR="$dyn" POINTSMAN_LABEL_PREFIX="$PREFIX"
    for slot in blue green; do
        role=candidate
        [ "$slot" = blue ] && role=stable
        docker run -d -q --name "pmbench-$RUN-web-$slot" --network "$NET" -e SLOT="$slot" -e VERSION="$slot" \
            -l io.pointsman.bench="$RUN" -l "$PREFIX.app=web" -l "$PREFIX.slot=$slot" \
            -l "$PREFIX.version=$role" -l "$PREFIX.host=web.bench" "$DEMO_IMAGE" >/dev/null
    done
    wait_healthy "pmbench-$RUN-web-blue"
    wait_healthy "pmbench-$RUN-web-green"
    start_controller "$dyn" "$work/controller.log"
    wait_for_file "$dyn/pointsman-web.yml"
    tip="$(start_traefik "pmbench-$RUN-traefik-file" "$root/traefik/traefik.yml" -v "$dyn:/etc/traefik/dynamic")"
    wait_routed "$tip" blue

    say "controller idle for ${IDLE_S}s"
    t0="$(now_ms)" k0="$(proc_ticks "$ctl")"
    sleep "$IDLE_S"
    metric pointsman.idle.cpu_pct "$(cpu_since "$ctl" "$k0" "$t0")"
    metric pointsman.idle.rss_kb "$(proc_kb "$ctl" VmRSS)"

    if phase flips; then
        say "pointsman: $FLIPS flips under load (promote/rollback, ~$((FLIPS * (GAP_MS + 50) / 1000 + 6)) s)"
        t0="$(now_ms)" k0="$(proc_ticks "$ctl")" m0="$(machine_ticks)"
        "$load" --addr "$tip:80" "${load_args[@]}" --flips "$FLIPS" \
            --flip "$bin promote web" --flip "$bin rollback web" \
            --out "$work/flips-pointsman.json" --responses "$work/responses-pointsman.tsv" 2>"$work/load-pointsman.txt"
        metric pointsman.run.cpu_pct "$(cpu_since "$ctl" "$k0" "$t0")"
        metric loadavg.flips "$(cut -d' ' -f1 /proc/loadavg)"
        metric busy.flips "$(machine_busy_since "$m0")"
        metric pointsman.run.rss_kb "$(proc_kb "$ctl" VmRSS)"
        metric pointsman.run.hwm_kb "$(proc_kb "$ctl" VmHWM)"
        grep -v '^  flip ' "$work/load-pointsman.txt" >&2
    fi

    if phase events; then
        say "controller event latency: $EVENTS stop/start cycles of a replica"
        for i in 1 2; do
            docker run -d -q --name "pmbench-$RUN-lat-$i" --network "$NET" --no-healthcheck \
                -l io.pointsman.bench="$RUN" -l "$PREFIX.app=lat" -l "$PREFIX.slot=a" \
                -l "$PREFIX.version=stable" -l "$PREFIX.host=lat.bench" "$DEMO_IMAGE" >/dev/null
        done
        sleep 1
        t0="$(now_ms)" k0="$(proc_ticks "$ctl")"
        event_cycles "pmbench-$RUN-lat-2" "$EVENTS" "$work/events-lat.jsonl"
        metric pointsman.events.cpu_pct "$(cpu_since "$ctl" "$k0" "$t0")"
        metric pointsman.events.rss_kb "$(proc_kb "$ctl" VmRSS)"
        python3 bench/event_latency.py "$work/controller.log" "$work/events-lat.jsonl" pointsman-lat.yml \
            >"$work/event-latency.json"
    fi
    stop_controller
    docker ps -aq --filter "label=io.pointsman.bench=$RUN" | xargs -r docker rm -f >/dev/null
fi

# ---- baseline: label routing on Traefik's Docker provider, relabel = recreate ----------------------
if phase baseline; then
    say "baseline: Traefik Docker provider, $FLIPS flips by recreating containers"
    # The same static configuration with the file provider swapped for the Docker provider.
    export BASELINE_PROVIDER="providers:
  docker:
    endpoint: unix:///var/run/docker.sock
    exposedByDefault: false
    network: $NET
    constraints: \"Label(\`io.pointsman.bench\`,\`$RUN\`)\""
    awk '/^providers:/ { print ENVIRON["BASELINE_PROVIDER"]; skip = 1; next }
         skip && /^[^ ]/ { skip = 0 }
         !skip' traefik/traefik.yml >"$work/traefik-docker.yml"
    grep -q '^  docker:' "$work/traefik-docker.yml" || die "could not derive the Docker-provider static config"
    start_baseline stable blue
    start_baseline candidate green
    wait_healthy "$(baseline_name blue stable)"
    wait_healthy "$(baseline_name green candidate)"
    bip="$(start_traefik "pmbench-$RUN-traefik-docker" "$work/traefik-docker.yml" -v /var/run/docker.sock:/var/run/docker.sock:ro)"
    wait_routed "$bip" blue
    sleep 3 # let Traefik's throttle window from the start pass, as for pointsman
    m0="$(machine_ticks)"
    "$load" --addr "$bip:80" "${load_args[@]}" --flips "$FLIPS" \
        --flip "$root/bench/baseline-flip.sh green blue" --flip "$root/bench/baseline-flip.sh blue green" \
        --out "$work/flips-baseline.json" --responses "$work/responses-baseline.tsv" 2>"$work/load-baseline.txt"
    metric loadavg.baseline "$(cut -d' ' -f1 /proc/loadavg)"
    metric busy.baseline "$(machine_busy_since "$m0")"
    grep -v '^  flip ' "$work/load-baseline.txt" >&2
    docker ps -aq --filter "label=io.pointsman.bench=$RUN" | xargs -r docker rm -f >/dev/null
fi

# ---- scale ----------------------------------------------------------------------------------------
if phase scale; then
    say "scale: bench/scale.sh with $SCALE containers, $SCALE_EVENTS events"
    # Its own fleet, labels and cleanup; its raw data and figures go to $work/scale.
    bench/scale.sh --no-build --no-results --containers "$SCALE" --events "$SCALE_EVENTS" \
        --work "$work/scale" >/dev/null || say "warning: bench/scale.sh failed (exit $?); see above"
fi

echo "loadavg_end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/conditions.txt"
python3 bench/report.py "$work" | tee "$root/bench/results.md"
say "raw data in $work; table in bench/results.md"
