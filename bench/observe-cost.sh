#!/usr/bin/env bash
# What serving /metrics and the status page costs the controller: Docker event -> file renamed
# latency with nobody asking, and with /metrics and the page (/) each polled at RATE requests/s.
# Prints the figures (a benchmark, not a test).
#
#   bench/observe-cost.sh [--rounds 3] [--events 15] [--rate 10] [--apps 20]
#
# One controller (release build) watches APPS apps of 2 demo containers each (so the page and
# the metrics have some size) plus the app `lat`, whose second replica is stopped and started
# EVENTS times per phase. Phases alternate, quiet / polled, ROUNDS times each, so drift in the
# machine's load falls on both alike. Latency is measured from Docker's own event time (`kill`
# or `die` for a stop, `start`) to the controller's `files updated` log line for the file
# (after the rename and the directory fsync), by bench/event_latency.py. The poller is a Python
# process at a fixed rate over keep-alive connections; it reports what it got.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

ROUNDS=3 EVENTS=15 RATE=10 APPS=20
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --events) EVENTS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --apps) APPS="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--events N] [--rate R] [--apps N]" >&2; exit 2 ;;
    esac
done

say() { echo "observe-cost: $*" >&2; }
RUN="oc$$"
PREFIX="pmobscost$$"
DEMO_IMAGE=pointsman-demo:dev
work="$root/target/observe-cost/$RUN"
mkdir -p "$work/dynamic"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    docker ps -aq --filter "label=io.pointsman.observe-cost=$RUN" | xargs -r docker rm -f >/dev/null
}
trap cleanup EXIT

docker image inspect "$DEMO_IMAGE" >/dev/null 2>&1 || { say "no $DEMO_IMAGE: run scripts/build-images.sh"; exit 2; }
# The static release build scripts/build-images.sh makes (same target dir: nothing rebuilt twice).
triple=x86_64-unknown-linux-gnu
say "cargo build --release (static) --bin pointsman"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build -q --release --target "$triple" --target-dir "$root/target/static" --bin pointsman
bin="$root/target/static/$triple/release/pointsman"

demo() { # NAME APP SLOT [docker args]
    local name="$1" app="$2" slot="$3"
    shift 3
    docker run -d -q --name "$RUN-$name" -l io.pointsman.observe-cost="$RUN" \
        -l "$PREFIX.app=$app" -l "$PREFIX.slot=$slot" -l "$PREFIX.host=$app.bench" "$@" "$DEMO_IMAGE" >/dev/null
}
say "starting $((APPS * 2 + 2)) containers"
for i in $(seq 1 "$APPS"); do
    demo "a$i-blue" "a$i" blue -l "$PREFIX.version=stable" --no-healthcheck
    demo "a$i-green" "a$i" green --no-healthcheck
done
demo lat-1 lat a -l "$PREFIX.version=stable" --no-healthcheck
demo lat-2 lat a --no-healthcheck

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
POINTSMAN_LOG=pointsman=debug "$bin" --dir "$work/dynamic" --label-prefix "$PREFIX" --log-format json \
    run --listen "127.0.0.1:$port" 2>"$work/controller.log" &
ctl=$!
pids+=("$ctl")
until grep -qs '"synced with Docker"' "$work/controller.log"; do sleep 0.1; done
until [ -e "$work/dynamic/pointsman-lat.yml" ]; do sleep 0.1; done
sleep 2
say "page $(curl -s "http://127.0.0.1:$port/" | wc -c) bytes, metrics $(curl -s "http://127.0.0.1:$port/metrics" | wc -c) bytes"

ticks() { awk '{print $14 + $15}' "/proc/$ctl/stat"; }

cycles() { # OUT: EVENTS stop/start cycles of lat-2, Docker's events recorded
    docker events --filter "container=$RUN-lat-2" --format '{{json .}}' >"$1" &
    local watcher=$!
    sleep 0.5
    for _ in $(seq "$EVENTS"); do
        docker stop -t 5 "$RUN-lat-2" >/dev/null
        sleep 0.7
        docker start "$RUN-lat-2" >/dev/null
        sleep 0.7
    done
    sleep 0.5
    kill "$watcher"
    wait "$watcher" 2>/dev/null || true
}

poll() { # OUT: GET / and /metrics, each at RATE/s, until killed; writes counts to OUT
    exec python3 - "$port" "$RATE" "$1" <<'PY'
import http.client, signal, sys, time
port, rate, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
conns = {p: http.client.HTTPConnection("127.0.0.1", port, timeout=5) for p in ("/", "/metrics")}
counts = {"ok": 0, "failed": 0, "bytes": 0, "slowest_ms": 0.0}
def done(*_):
    with open(out, "w") as f:
        f.write(" ".join(f"{k}={v}" for k, v in counts.items()) + "\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
interval, t = 1.0 / rate, time.monotonic()
while True:
    for path, c in conns.items():
        start = time.monotonic()
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            counts["ok" if r.status == 200 else "failed"] += 1
            counts["bytes"] += len(body)
        except Exception:
            counts["failed"] += 1
            conns[path] = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        counts["slowest_ms"] = max(counts["slowest_ms"], round((time.monotonic() - start) * 1000, 1))
    t += interval
    time.sleep(max(0.0, t - time.monotonic()))
PY
}

for round in $(seq 1 "$ROUNDS"); do
    for phase in quiet polled; do
        say "round $round: $phase ($EVENTS stop/start cycles)"
        poller=""
        if [ "$phase" = polled ]; then
            poll "$work/poll-$round.txt" &
            poller=$!
            pids+=("$poller")
            sleep 1
        fi
        k0="$(ticks)" t0="$(date +%s.%N)"
        cycles "$work/events-$phase-$round.jsonl"
        k1="$(ticks)" t1="$(date +%s.%N)"
        echo "$k0 $k1 $t0 $t1" >"$work/cpu-$phase-$round.txt"
        if [ -n "$poller" ]; then
            kill -TERM "$poller"
            wait "$poller" 2>/dev/null || true
        fi
    done
done

hz="$(getconf CLK_TCK)"
for phase in quiet polled; do
    cat "$work"/events-$phase-*.jsonl >"$work/events-$phase.jsonl"
    python3 bench/event_latency.py "$work/controller.log" "$work/events-$phase.jsonl" pointsman-lat.yml \
        >"$work/latency-$phase.json"
    cpu="$(cat "$work"/cpu-$phase-*.txt | awk -v hz="$hz" '{ s += ($2 - $1) / hz; t += $4 - $3 } END { printf "%.1f", 100 * s / t }')"
    python3 - "$work/latency-$phase.json" "$phase" "$RATE" "$cpu" <<'PY'
import json, sys
lat, phase, rate, cpu = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4]
who = f"/ and /metrics each at {rate} req/s" if phase == "polled" else "nobody asking"
f = lambda s: f"p50 {s['p50']:.1f} ms, p95 {s['p95']:.1f} ms, max {s['max']:.1f} ms (n={s['n']})"
print(f"{phase:>6} ({who}): stop -> file {f(lat['stop_ms'])}; start -> file {f(lat['start_ms'])}; "
      f"unmatched {lat['unmatched']}; controller CPU {cpu} %")
PY
done
for f in "$work"/poll-*.txt; do echo "poller: $(cat "$f")"; done
say "raw data in $work"
