#!/usr/bin/env bash
# The scale benchmark: `pointsman run` and the CLI with N idle labelled containers.
#
#   bench/scale.sh [--containers N] [--events M] [--event-kind pause|stop] [--gap-ms MS]
#                  [--cli-runs R] [--resync-s S] [--keep] [--reuse RUN] [--no-build]
#                  [--image IMAGE] [--work DIR] [--no-results]
#   bench/scale.sh --remove RUN
#
# Defaults: 1000 containers (N/2 apps × 2 slots, blue stable and green candidate), 1000 events
# (pause/unpause), 50 ms between events, 20 timed CLI promotes, resync check every 5 s.
# Figures on stdout and in bench/results.md's "Scale" section (--no-results: stdout only);
# raw data (controller logs, Docker events, JSON) in target/bench/scale-DATE-RUN/ or --work DIR.
#
# Fleet: idle `pointsman-demo:dev` containers (scripts/build-images.sh; --image to use another
# tag), no healthcheck, no logging driver, on bridge networks of ≤ 500, labelled
# io.pointsman.bench=RUN and with the label prefix RUN (so no other controller on this Docker
# sees them); created in parallel (`docker run`, 4 at a time), stopping early if the machine
# runs below 2 GB available. The fleet's own CPU use is measured while the controller idles:
# it must be near 0, or every figure below measures a busy machine (a demo build that polled
# every 20 ms made 1,000 idle containers take both cores).
# --keep leaves them (and their networks) for a later --reuse RUN, which creates only what is
# missing and unpauses / starts what an interrupted run left; --remove RUN deletes them.
#
# Measured, all with the release binary on the host (`POINTSMAN_LOG=pointsman=debug`,
# `--log-format json`), a fresh directory per run:
# 1. controller A (default --resync-interval, 60 s): full listing time (`synced with Docker`),
#    first write of every file, RSS/VmHWM 3 s after that, idle CPU for 10 s;
# 2. event → file renamed over M events: bench/event_driver.py pauses then unpauses one
#    container after another (apps s1, s2, … in turn, blue and green alternately; --event-kind
#    stop: `docker stop` then `docker start`) through Docker's API, waiting for the controller's
#    write (or 5 s) plus MS before the next event; bench/event_latency.py matches each Docker
#    event (`timeNano`) to the first `files updated` line that wrote its app's file after it.
#    p50/p95/p99/max; RSS/VmHWM and CPU after the M events;
# 3. CLI `pointsman promote s0` wall time, R runs while A runs, each after a rollback (hyperfine
#    --prepare if installed, else timed here), p50/p95; Docker's own listing time for comparison;
# 4. controller B with --resync-interval S: files written by its first reconcile (nothing
#    changed since A stopped) and by two periodic resyncs with no container change, from its
#    `files updated` lines and from inotifywait on the directory (if installed) → must be 0;
#    its `synced with Docker` time is a second full-listing sample.
set -euo pipefail
export LC_ALL=C # sort and join below agree on the order

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source bench/lib.sh

N=1000 M=1000 KIND=pause GAP_MS=50 CLI_RUNS=20 RESYNC_S=5 IDLE_S=10
KEEP=0 REUSE="" BUILD=1 WORK="" RESULTS=1 REMOVE="" IMAGE="$DEMO_IMAGE"
while [ $# -gt 0 ]; do
    case "$1" in
        --containers) N="$2"; shift 2 ;;
        --events) M="$2"; shift 2 ;;
        --event-kind) KIND="$2"; shift 2 ;;
        --gap-ms) GAP_MS="$2"; shift 2 ;;
        --cli-runs) CLI_RUNS="$2"; shift 2 ;;
        --resync-s) RESYNC_S="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --reuse) REUSE="$2"; shift 2 ;;
        --remove) REMOVE="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --work) WORK="$2"; shift 2 ;;
        --image) IMAGE="$2"; shift 2 ;;
        --no-results) RESULTS=0; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
case "$KIND" in pause | stop) ;; *) die "--event-kind is pause or stop" ;; esac
[ "$N" -ge 2 ] || die "--containers must be at least 2"
[ "$RESYNC_S" -ge 1 ] || die "--resync-s must be at least 1"

# remove_fleet RUN: every container and network labelled io.pointsman.bench=RUN.
remove_fleet() {
    local ids net
    ids="$(docker ps -aq --filter "label=io.pointsman.bench=$1")"
    if [ -n "$ids" ]; then
        say "removing $(echo "$ids" | wc -l) container(s) of $1"
        # One at a time: after many concurrent removals Docker 20.10 has kept a network's
        # endpoint count above zero here ("has active endpoints" with no container left).
        echo "$ids" | xargs -r -n 1 docker rm -f >/dev/null 2>&1 || true
    fi
    for net in $(docker network ls -q --filter "label=io.pointsman.bench=$1"); do
        for _ in 1 2 3 4 5; do
            docker network rm "$net" >/dev/null 2>&1 && break
            sleep 2
        done
        docker network inspect "$net" >/dev/null 2>&1 &&
            say "warning: could not remove network $(docker network inspect -f '{{.Name}}' "$net"): $(docker network rm "$net" 2>&1 | head -n 1)"
    done
    return 0
}
if [ -n "$REMOVE" ]; then
    remove_fleet "$REMOVE"
    exit 0
fi

if [ -n "$REUSE" ]; then
    RUN="$REUSE"
else
    RUN="pms$$"
fi
export RUN
PREFIX="$RUN" # the label prefix: this fleet is invisible to every other pointsman on this Docker
export POINTSMAN_LABEL_PREFIX="$PREFIX"
work="${WORK:-$root/target/bench/scale-$(date +%Y%m%d-%H%M%S)-$RUN}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
metrics="$work/metrics.txt" # "key value" lines, read by bench/scale_report.py
: >"$metrics"
metric() { echo "$1 $2" >>"$metrics"; }

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
    if [ "$KEEP" = 1 ]; then
        say "kept $(docker ps -aq --filter "label=io.pointsman.bench=$RUN" | wc -l) container(s): rerun with --reuse $RUN, remove with bench/scale.sh --remove $RUN"
    else
        remove_fleet "$RUN"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin="$root/target/release/pointsman"
socket=/var/run/docker.sock
case "${DOCKER_HOST:-}" in
    "") ;;
    unix://*) socket="${DOCKER_HOST#unix://}" ;;
    *) die "DOCKER_HOST=$DOCKER_HOST: bench/event_driver.py needs Docker's Unix socket" ;;
esac

# ---- /proc sampling ------------------------------------------------------------------------------
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
proc_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
cpu_since() { # PID TICKS0 T0_MS: CPU % of one core since then
    awk -v a="$2" -v b="$(proc_ticks "$1")" -v t0="$3" -v t1="$(now_ms)" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", (b - a) / hz / ((t1 - t0) / 1000) * 100 }'
}
cpu_s_since() { # PID TICKS0: CPU seconds since then
    awk -v a="$2" -v b="$(proc_ticks "$1")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }'
}
# machine_ticks: "busy total" jiffies of all CPUs; machine_busy_since "BUSY TOTAL": % of all
# cores busy since that sample (everything on the machine).
machine_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
machine_busy_since() {
    local a=($1) b=($(machine_ticks))
    awk -v b="$((b[0] - a[0]))" -v t="$((b[1] - a[1]))" 'BEGIN { printf "%.0f", t ? b / t * 100 : 0 }'
}
# fleet_cpu_ns: CPU time (ns) used so far by the containers in $work/fleet-ids.txt, from their
# cgroups (v1 cpuacct or v2 cpu.stat); empty if neither is found.
fleet_cpu_ns() {
    local id f total=0 found=0
    while read -r id; do
        for f in "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage" "/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat" \
            "/sys/fs/cgroup/docker/$id/cpu.stat"; do
            [ -r "$f" ] || continue
            case "$f" in
                *cpu.stat) total=$((total + $(awk '$1 == "usage_usec" {print $2 * 1000}' "$f"))) ;;
                *) total=$((total + $(cat "$f"))) ;;
            esac
            found=$((found + 1))
            break
        done
    done <"$work/fleet-ids.txt"
    [ "$found" -gt 0 ] && echo "$total"
    return 0
}
ms_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.0f", b - a }'; }
log_count() { grep -c "\"$2\"" "$1" || true; } # LOG MESSAGE: lines with that message

# start_controller NAME [run args…]: `pointsman run` on $dir with debug JSON logs in
# $work/controller-NAME.log; waits for its first full listing. Sets $ctl and $ctl_log.
start_controller() {
    local name="$1"
    shift
    ctl_log="$work/controller-$name.log"
    POINTSMAN_LOG=pointsman=debug "$bin" --dir "$dir" --log-format json run --listen off "$@" 2>"$ctl_log" &
    ctl=$!
    bg_pids+=("$ctl")
    local deadline=$((SECONDS + 300))
    until grep -qs '"synced with Docker"' "$ctl_log"; do
        kill -0 "$ctl" 2>/dev/null || die "controller exited: $(tail -n 3 "$ctl_log")"
        [ "$SECONDS" -lt "$deadline" ] || die "controller did not sync within 300 s"
        sleep 0.05
    done
}
stop_controller() {
    kill -TERM "$ctl"
    wait "$ctl" || true
    untrack "$ctl"
}
# wait_log LOG MESSAGE COUNT TIMEOUT_S: until LOG has COUNT lines with MESSAGE.
wait_log() {
    local deadline=$((SECONDS + $4))
    until [ "$(log_count "$1" "$2")" -ge "$3" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "no $3 × \"$2\" in $1 within $4 s"
        sleep 0.1
    done
}

# ---- build & conditions --------------------------------------------------------------------------
docker info >/dev/null 2>&1 || die "docker is not reachable"
[ -S "$socket" ] || die "no Docker socket at $socket"
if [ "$BUILD" = 1 ]; then
    say "building the release binary and the demo image"
    cargo build --release --bin pointsman 2>&1 | tail -n 1 >&2
    BINS=pointsman-demo IMAGES=demo scripts/build-images.sh
fi
[ -x "$bin" ] || die "$bin is missing (run without --no-build)"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE is missing (scripts/build-images.sh)"
image_id="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
command="bench/scale.sh --containers $N --events $M --event-kind $KIND --gap-ms $GAP_MS --cli-runs $CLI_RUNS --resync-s $RESYNC_S"
[ "$IMAGE" = "$DEMO_IMAGE" ] || command="$command --image $IMAGE"
{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)"
    echo "cpu $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "memory_gb $(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
    echo "kernel $(uname -r)"
    echo "docker $(docker version -f '{{.Server.Version}}')"
    echo "loadavg_start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "command $command"
    echo "run $RUN"
    echo "reused $([ -n "$REUSE" ] && echo yes || echo no)"
    echo "image $IMAGE ${image_id:7:12}"
} >"$work/conditions.txt"
t_start="$(now_ms)"

# ---- the fleet -----------------------------------------------------------------------------------
apps=$((N / 2))
per_net=500 # a Linux bridge holds at most 1024 ports
name_of() { # INDEX: container name and its slot, role
    local j="$1" slot=blue role=stable
    if ((j % 2)); then slot=green role=candidate; fi
    echo "pmbench-$RUN-s$((j / 2))-$slot $slot $role"
}
if [ -n "$REUSE" ]; then
    # Put back what an interrupted run may have left paused or stopped.
    docker ps -q --filter "label=io.pointsman.bench=$RUN" --filter status=paused | xargs -r docker unpause >/dev/null
    docker ps -aq --filter "label=io.pointsman.bench=$RUN" --filter status=exited --filter status=created |
        xargs -r docker start >/dev/null
fi
for n in $(seq 0 $(((N - 1) / per_net))); do
    net="pmbench-$RUN-scale-$n"
    docker network inspect "$net" >/dev/null 2>&1 ||
        docker network create --label io.pointsman.bench="$RUN" "$net" >/dev/null
done
existing="$work/existing.txt"
docker ps -a --filter "label=io.pointsman.bench=$RUN" --format '{{.Names}}' | sort >"$existing"
todo="$work/to-create.txt"
for ((j = 0; j < N; j++)); do
    read -r name slot role <<<"$(name_of "$j")"
    echo "$name $slot $role $j"
done | sort -k1,1 | join -v 1 - "$existing" | sort -n -k4,4 >"$todo"
say "fleet $RUN: $(wc -l <"$existing") container(s) there, $(wc -l <"$todo") to create (of $N)"
t0="$(now_ms)"
created=0
mapfile -t todo_lines <"$todo"
for ((b = 0; b < ${#todo_lines[@]}; b += 100)); do
    avail_mb="$(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)"
    if [ "$avail_mb" -lt 2048 ]; then
        say "stopping after $created new containers: only $avail_mb MB of memory left"
        break
    fi
    chunk=("${todo_lines[@]:b:100}")
    if ! for line in "${chunk[@]}"; do
        read -r name slot role j <<<"$line"
        echo "--name $name --network pmbench-$RUN-scale-$((j / per_net)) --no-healthcheck --log-driver none" \
            "-e SLOT=$slot -l io.pointsman.bench=$RUN -l $PREFIX.app=s$((j / 2)) -l $PREFIX.slot=$slot" \
            "-l $PREFIX.version=$role -l $PREFIX.host=s$((j / 2)).bench $IMAGE"
    done | xargs -P 4 -L 1 docker run -d -q >/dev/null; then
        say "docker run failed after about $created new containers; stopping there"
        break
    fi
    created=$((created + ${#chunk[@]}))
    say "  $created / ${#todo_lines[@]} created"
done
metric fleet.created "$created"
metric fleet.create_s "$(awk -v ms="$(ms_since "$t0")" 'BEGIN { printf "%.0f", ms / 1000 }')"
running="$(docker ps -q --filter "label=io.pointsman.bench=$RUN" --filter "label=$PREFIX.app" | wc -l)"
metric fleet.running "$running"
metric fleet.requested "$N"
[ "$running" -ge 2 ] || die "only $running container(s) running"
others_image="$(docker ps -q --filter "label=io.pointsman.bench=$RUN" | xargs docker inspect -f '{{.Image}}' |
    grep -vc "^$image_id\$" || true)"
metric fleet.other_image "$others_image"
[ "$others_image" = 0 ] || say "warning: $others_image container(s) of $RUN run another image than $IMAGE"
apps=$((running / 2))
say "$running labelled containers running ($apps apps)"

# Docker's own listing time: every labelled container (what the CLI lists) and one app only.
list_ms() {
    for _ in 1 2 3 4 5; do
        curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$socket" -G \
            --data-urlencode all=1 --data-urlencode "filters={\"label\":[\"$1\"]}" http://docker/containers/json
    done | sort -n | awk 'NR == 3 { printf "%.1f", $1 * 1000 }'
}
metric docker.list_all_ms "$(list_ms "$PREFIX.app")"
metric docker.list_app_ms "$(list_ms "$PREFIX.app=s1")"

# ---- controller A: initial sync, idle, events, CLI ----------------------------------------------
dir="$work/dir"
mkdir -p "$dir"
export POINTSMAN_DIR="$dir"
say "controller A: first sync of $running containers"
start_controller a
wait_log "$ctl_log" "files updated" 1 300
sleep 3
metric a.rss_after_sync_kb "$(proc_kb "$ctl" VmRSS)"
metric a.hwm_after_sync_kb "$(proc_kb "$ctl" VmHWM)"
metric a.files "$(find "$dir" -maxdepth 1 -name 'pointsman-*.yml' | wc -l)"
say "controller A idle for ${IDLE_S}s"
docker ps -q --no-trunc --filter "label=io.pointsman.bench=$RUN" >"$work/fleet-ids.txt"
t0="$(now_ms)" k0="$(proc_ticks "$ctl")" f0="$(fleet_cpu_ns)" m0="$(machine_ticks)"
sleep "$IDLE_S"
metric a.idle_cpu_pct "$(cpu_since "$ctl" "$k0" "$t0")"
f1="$(fleet_cpu_ns)"
[ -n "$f0" ] && [ -n "$f1" ] &&
    metric fleet.idle_cpu_pct "$(awk -v a="$f0" -v b="$f1" -v ms="$(ms_since "$t0")" 'BEGIN { printf "%.1f", (b - a) / 1e6 / ms * 100 }')"
metric machine.idle_busy_pct "$(machine_busy_since "$m0")"
metric machine.idle_loadavg "$(cut -d' ' -f1 /proc/loadavg)"

# Targets: apps s1, s2, … (s0 is the CLI's), blue and green in turn; one line per pair of events.
targets="$work/event-targets.txt"
others=$((apps > 1 ? apps - 1 : 1))
for ((c = 0; c < (M + 1) / 2; c++)); do
    a=$((apps > 1 ? 1 + c % others : 0)) slot=blue
    ((c % 2)) && slot=green
    echo "pmbench-$RUN-s$a-$slot s$a"
done >"$targets"
say "event → file: $M events ($KIND), $GAP_MS ms after each write"
docker events --filter "label=io.pointsman.bench=$RUN" --filter type=container --format '{{json .}}' \
    >"$work/docker-events.jsonl" &
watcher=$!
bg_pids+=("$watcher")
sleep 0.5
t0="$(now_ms)" k0="$(proc_ticks "$ctl")"
python3 bench/event_driver.py --targets "$targets" --events "$M" --kind "$KIND" --log "$ctl_log" \
    --gap-ms "$GAP_MS" --socket "$socket" >"$work/driver.jsonl"
metric a.events_s "$(awk -v ms="$(ms_since "$t0")" 'BEGIN { printf "%.1f", ms / 1000 }')"
metric a.events_cpu_pct "$(cpu_since "$ctl" "$k0" "$t0")"
metric a.events_cpu_s "$(cpu_s_since "$ctl" "$k0")"
metric a.rss_after_events_kb "$(proc_kb "$ctl" VmRSS)"
metric a.hwm_after_events_kb "$(proc_kb "$ctl" VmHWM)"
sleep 1
kill "$watcher"
wait "$watcher" 2>/dev/null || true
untrack "$watcher"
python3 bench/event_latency.py "$ctl_log" "$work/docker-events.jsonl" --per-app "$PREFIX" >"$work/event-latency.json"

say "CLI: $CLI_RUNS × \`pointsman promote s0\` (each after a rollback) with $running containers"
"$bin" promote s0 >/dev/null # so that the first rollback has something to undo
if command -v hyperfine >/dev/null; then
    metric cli.tool hyperfine
    hyperfine -N --style basic --warmup 1 --runs "$CLI_RUNS" --prepare "$bin rollback s0" \
        --export-json "$work/cli-hyperfine.json" "$bin promote s0" >"$work/cli-hyperfine.txt" 2>&1 ||
        die "hyperfine failed: $(tail -n 5 "$work/cli-hyperfine.txt")"
    python3 -c 'import json, sys; [print(f"{t * 1000:.3f}") for t in json.load(open(sys.argv[1]))["results"][0]["times"]]' \
        "$work/cli-hyperfine.json" >"$work/cli-promote.txt"
else
    metric cli.tool bash
    : >"$work/cli-promote.txt"
    for _ in $(seq "$CLI_RUNS"); do
        "$bin" rollback s0 >/dev/null
        a="$(now_ms)"
        "$bin" promote s0 >/dev/null
        awk -v a="$a" -v b="$(now_ms)" 'BEGIN { printf "%.3f\n", b - a }' >>"$work/cli-promote.txt"
    done
fi
metric a.rss_end_kb "$(proc_kb "$ctl" VmRSS)"
metric a.hwm_end_kb "$(proc_kb "$ctl" VmHWM)"
stop_controller

# ---- controller B: restart and periodic resyncs with nothing changed -----------------------------
# The controller subscribes to Docker's events from 2 s before its start, so it would replay
# the last events of A's run as changes; let them age out first.
sleep 3
say "controller B: restart, then two periodic resyncs (every ${RESYNC_S}s) with no change"
start_controller b --resync-interval "$RESYNC_S"
sleep 2
metric b.first_reconcile_writes "$(log_count "$ctl_log" "files updated")"
inotify=0
if command -v inotifywait >/dev/null; then
    inotify=1
    inotifywait -m -r -e close_write -e moved_to -e create -e delete --format '%w%f %e' "$dir" \
        >"$work/inotify.txt" 2>"$work/inotify.err" &
    iw=$!
    bg_pids+=("$iw")
    deadline=$((SECONDS + 30))
    until grep -qs 'Watches established' "$work/inotify.err"; do
        [ "$SECONDS" -lt "$deadline" ] || die "inotifywait did not start: $(cat "$work/inotify.err")"
        sleep 0.05
    done
fi
before="$(log_count "$ctl_log" "files updated")"
k0="$(proc_ticks "$ctl")"
resyncs0="$(log_count "$ctl_log" "periodic resync")"
# The third `periodic resync` line comes after the second resync's listing went to the
# controller; 1 s more covers its reconcile.
wait_log "$ctl_log" "periodic resync" $((resyncs0 + 3)) $((RESYNC_S * 4 + 120))
sleep 1
metric b.resyncs 2
metric b.resync_cpu_s "$(awk -v s="$(cpu_s_since "$ctl" "$k0")" 'BEGIN { printf "%.2f", s / 3 }')"
metric b.resync_writes "$(($(log_count "$ctl_log" "files updated") - before))"
if [ "$inotify" = 1 ]; then
    kill "$iw"
    wait "$iw" 2>/dev/null || true
    untrack "$iw"
    # The lock file is opened on every reconcile; anything else is a write.
    metric b.inotify_events "$(grep -v '/\.pointsman/lock ' "$work/inotify.txt" | grep -c . || true)"
    metric b.inotify_renames "$(grep -c ' MOVED_TO' "$work/inotify.txt" || true)"
    metric b.inotify_lock_events "$(grep -c '/\.pointsman/lock ' "$work/inotify.txt" || true)"
fi
metric b.rss_kb "$(proc_kb "$ctl" VmRSS)"
stop_controller
grep -h '"synced with Docker"' "$work/controller-a.log" "$work/controller-b.log" >"$work/syncs.jsonl"
grep -m 1 '"files updated"' "$work/controller-a.log" >"$work/first-write.jsonl"

metric wall_s "$(awk -v ms="$(ms_since "$t_start")" 'BEGIN { printf "%.0f", ms / 1000 }')"
echo "loadavg_end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/conditions.txt"
if [ "$RESULTS" = 1 ]; then
    python3 bench/scale_report.py "$work" --splice "$root/bench/results.md"
    say "raw data in $work; section \"Scale\" of bench/results.md updated"
else
    python3 bench/scale_report.py "$work"
    say "raw data in $work"
fi
