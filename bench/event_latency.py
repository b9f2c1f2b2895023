#!/usr/bin/env python3
"""Docker-event -> file-renamed latency of the pointsman controller, from two records:

  event_latency.py CONTROLLER_LOG DOCKER_EVENTS FILE_NAME   (JSON on stdout)

CONTROLLER_LOG is `pointsman --log-format json run` output with POINTSMAN_LOG=pointsman=debug:
the controller logs `files updated` (with `written=[...]` and `us`, its render + write time)
after the rename and the directory fsync. DOCKER_EVENTS is `docker events --format '{{json .}}'`
for one container that was stopped (`docker stop`) and started again, several times.

Each stop is timed from its first event, `kill` (the controller drains a container on a
terminating signal) or `die` if there was no `kill`; each start from `start`. The latency is the
time to the first `files updated` line that wrote FILE_NAME before the next such event. Both
clocks are this host's wall clock (Docker's `timeNano`, the log's `timestamp`). Also reported:
how many stops had the file rewritten before the process exited (before `die`), and Docker's own
time from `die` to `stop`.
"""
import json
import math
import sys
from datetime import datetime


def stats(values):
    v = sorted(values)
    if not v:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    rank = lambda p: v[max(1, math.ceil(p * len(v))) - 1]  # nearest rank
    return {"n": len(v), "p50": rank(0.50), "p95": rank(0.95), "max": v[-1]}


def read_events(path):
    """[(time, action)] sorted: one ('stop', t) per stop, ('start', t) per start; plus die times
    and die -> stop durations."""
    raw = []
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            raw.append((e["timeNano"] / 1e9, e.get("Action") or e.get("status")))
    raw.sort()
    triggers, dies, die_to_stop = [], [], []
    stopping = False  # inside a stop, after its kill or die
    last_die = None
    for t, action in raw:
        if action in ("kill", "die") and not stopping:
            triggers.append((t, "stop"))
            stopping = True
        if action == "die":
            dies.append(t)
            last_die = t
        elif action == "stop" and last_die is not None:
            die_to_stop.append((t - last_die) * 1000)
            last_die = None
        elif action == "start":
            triggers.append((t, "start"))
            stopping = False
    return triggers, dies, die_to_stop


def read_writes(path, file_name):
    writes = []
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("message") == "files updated" and file_name in str(rec.get("written", "")):
                ts = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
                writes.append((ts, rec.get("us")))
    return sorted(writes)


def main(log_path, events_path, file_name):
    triggers, dies, die_to_stop = read_events(events_path)
    writes = read_writes(log_path, file_name)
    latencies = {"stop": [], "start": []}
    render_ms = []
    unmatched = before_die = 0
    for i, (t, kind) in enumerate(triggers):
        t_next = triggers[i + 1][0] if i + 1 < len(triggers) else float("inf")
        hit = next(((ts, us) for ts, us in writes if t <= ts < t_next), None)
        if hit is None:
            unmatched += 1
            continue
        latencies[kind].append((hit[0] - t) * 1000)
        if hit[1] is not None:
            render_ms.append(hit[1] / 1000)
        if kind == "stop":
            die = next((d for d in dies if t <= d < t_next), None)
            before_die += die is not None and hit[0] < die
    out = {
        "events": len(triggers),
        "unmatched": unmatched,
        "stop_ms": stats(latencies["stop"]),
        "start_ms": stats(latencies["start"]),
        "stops_written_before_die": before_die,
        "render_write_ms": stats(render_ms),
        "docker_die_to_stop_ms": stats(die_to_stop),
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
