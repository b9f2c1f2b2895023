#!/usr/bin/env python3
"""Docker-event -> file-renamed latency of the pointsman controller, from two records:

  event_latency.py CONTROLLER_LOG DOCKER_EVENTS FILE_NAME        (one app's file; JSON on stdout)
  event_latency.py CONTROLLER_LOG DOCKER_EVENTS --per-app PREFIX  (each event's own app)

CONTROLLER_LOG is `pointsman --log-format json run` output with POINTSMAN_LOG=pointsman=debug:
the controller logs `files updated` (with `written=[...]` and `us`, its render + write time)
after the rename and the directory fsync. DOCKER_EVENTS is `docker events --format '{{json .}}'`
for the containers that were stopped and started (`docker stop` / `docker start`) or paused and
unpaused, any number of times, in any number of apps.

With FILE_NAME every event counts for that file. With --per-app PREFIX an event counts for the
file of its container's app, `pointsman-APP.yml`, APP being the event's label PREFIX.app (Docker
copies a container's labels into its events).

Triggers, per container: a stop is timed from its first event, `kill` (the controller drains a
container on a terminating signal) or `die` if there was no `kill`; a start from `start`; a
pause from `pause`, an unpause from `unpause`. The latency is the time to the first `files
updated` line that wrote the trigger's file at or after the trigger and before the next trigger
for the same file. Both clocks are this host's wall clock (Docker's `timeNano`, the log's
`timestamp`). Also reported: how many stops had the file rewritten before the process exited
(before `die`), Docker's own time from `die` to `stop`, and how many matched events may have
waited for a listing of Docker (the watcher handles no event while it lists): those with a
`periodic resync` or `synced with Docker` line between L before the event and its write, L
being the longest listing the log reports (`synced with Docker`, `ms`; periodic resyncs do not
log theirs).
"""
import bisect
import json
import math
import re
import sys
from collections import defaultdict
from datetime import datetime

KINDS = ("stop", "start", "pause", "unpause")


def stats(values):
    v = sorted(values)
    if not v:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    rank = lambda p: v[max(1, math.ceil(p * len(v))) - 1]  # nearest rank
    return {"n": len(v), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": v[-1],
            "mean": sum(v) / len(v)}


def read_events(path, file_of):
    """Triggers [(time, kind, file)] sorted by time; die times per file; die -> stop durations."""
    per_container = defaultdict(list)
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            e = json.loads(line)
            if (e.get("Type") or "container") != "container":
                continue
            cid = e.get("id") or e.get("Actor", {}).get("ID")
            per_container[cid].append((e["timeNano"] / 1e9, e.get("Action") or e.get("status"), file_of(e)))
    triggers, dies, die_to_stop = [], defaultdict(list), []
    for raw in per_container.values():
        raw.sort(key=lambda r: r[0])
        stopping = False  # inside a stop, after its kill or die
        last_die = None
        for t, action, file_name in raw:
            if file_name is None:
                continue
            if action in ("kill", "die") and not stopping:
                triggers.append((t, "stop", file_name))
                stopping = True
            if action == "die":
                dies[file_name].append(t)
                last_die = t
            elif action == "stop" and last_die is not None:
                die_to_stop.append((t - last_die) * 1000)
                last_die = None
            elif action == "start":
                triggers.append((t, "start", file_name))
                stopping = False
            elif action in ("pause", "unpause"):
                triggers.append((t, action, file_name))
    triggers.sort()
    return triggers, dies, die_to_stop


def log_time(rec):
    return datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()


def read_log(path):
    """{file: sorted [(time, us)]} of `files updated` lines; sorted start times of listings
    (periodic resyncs, fresh listings); the longest listing's duration in seconds."""
    writes, listings, longest = defaultdict(list), [], 0.0
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            msg = rec.get("message")
            if msg == "files updated":
                ts = log_time(rec)
                for name in re.findall(r'"([^"]+)"', str(rec.get("written", ""))):
                    writes[name].append((ts, rec.get("us")))
            elif msg == "periodic resync":
                listings.append(log_time(rec))
            elif msg == "synced with Docker":
                # logged when the listing is done: it started `ms` earlier
                longest = max(longest, (rec.get("ms") or 0) / 1000)
                listings.append(log_time(rec) - (rec.get("ms") or 0) / 1000)
    for v in writes.values():
        v.sort(key=lambda w: w[0])
    listings.sort()
    return writes, listings, longest


def main(argv):
    if len(argv) == 4 and argv[3] != "--per-app":
        log_path, events_path, fixed = argv[1], argv[2], argv[3]
        file_of = lambda e: fixed
    elif len(argv) == 5 and argv[3] == "--per-app":
        log_path, events_path, prefix = argv[1], argv[2], argv[4]
        def file_of(e):
            app = (e.get("Actor", {}).get("Attributes") or {}).get(f"{prefix}.app")
            return f"pointsman-{app}.yml" if app else None
    else:
        sys.exit(__doc__)
    triggers, dies, die_to_stop = read_events(events_path, file_of)
    writes, listings, longest = read_log(log_path)
    next_same_file = {}
    last_index = {}
    for i in range(len(triggers) - 1, -1, -1):
        f = triggers[i][2]
        next_same_file[i] = triggers[last_index[f]][0] if f in last_index else float("inf")
        last_index[f] = i
    latencies = defaultdict(list)
    render_ms = []
    unmatched = before_die = during_listing = 0
    for i, (t, kind, file_name) in enumerate(triggers):
        ws = writes.get(file_name, [])
        j = bisect.bisect_left([w[0] for w in ws], t)
        if j == len(ws) or ws[j][0] >= next_same_file[i]:
            unmatched += 1
            continue
        hit, us = ws[j]
        latencies[kind].append((hit - t) * 1000)
        if us is not None:
            render_ms.append(us / 1000)
        k = bisect.bisect_left(listings, t - longest)
        during_listing += k < len(listings) and listings[k] <= hit
        if kind == "stop":
            d = dies.get(file_name, [])
            k = bisect.bisect_left(d, t)
            before_die += k < len(d) and d[k] < next_same_file[i] and hit < d[k]
    out = {
        "events": len(triggers),
        "unmatched": unmatched,
        "all_ms": stats([x for k in KINDS for x in latencies[k]]),
        **{f"{k}_ms": stats(latencies[k]) for k in KINDS},
        "stops_written_before_die": before_die,
        "with_listing_in_between": during_listing,
        "longest_listing_ms": round(longest * 1000),
        "render_write_ms": stats(render_ms),
        "docker_die_to_stop_ms": stats(die_to_stop),
        "first_event": triggers[0][0] if triggers else None,
        "last_event": triggers[-1][0] if triggers else None,
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main(sys.argv)
