#!/usr/bin/env python3
"""The "Scale" section of bench/results.md, from one bench/scale.sh run's raw data.

  scale_report.py WORK_DIR                     (markdown on stdout)
  scale_report.py WORK_DIR --splice RESULTS_MD (also replaces the "## Scale" section there)

Reads WORK_DIR/conditions.txt, metrics.txt ("key value" lines), event-latency.json
(bench/event_latency.py), driver.jsonl (bench/event_driver.py), syncs.jsonl and
first-write.jsonl (the controllers' `synced with Docker` / first `files updated` lines) and
cli-promote.txt (one ms per line). Every number printed comes from those files. bench/report.py
uses section() for the same section of a full bench/run.sh run.
"""
import json
import math
import os
import sys


def _pairs(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    k, _, v = line.rstrip("\n").partition(" ")
                    out[k] = v
    except OSError:
        pass
    return out


def _json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _jsonl(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError):
        return []


def _numbers(path):
    try:
        with open(path) as f:
            return sorted(float(x) for x in f if x.strip())
    except OSError:
        return []


def stats(values):
    v = sorted(values)
    if not v:
        return None
    rank = lambda p: v[max(1, math.ceil(p * len(v))) - 1]  # nearest rank
    return {"n": len(v), "p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": v[-1]}


def ms(v):
    if v is None:
        return "—"
    return f"{v:.2f} ms" if v < 10 else f"{v:,.0f} ms" if v >= 1000 else f"{v:.1f} ms"


def mb(kb):
    return "—" if kb in (None, "") else f"{int(kb) / 1024:.1f} MB"


def target(value, limit, unit="ms", what=""):
    """'met' or 'missed by X (Y×)' for a value that must stay at or below limit."""
    lead = f"{what} ≤ {limit} {unit}".strip()
    if value is None:
        return f"{lead}: not measured"
    if value <= limit:
        return f"{lead}: **met**"
    r = value / limit if limit else float("inf")
    by = value - limit
    by = f"{by:.1f}" if by < 10 else f"{by:,.0f}"
    return f"{lead}: **missed** by {by} {unit} ({r:.1f}×)" if limit else f"{lead}: **missed**"


def pctl(s, keys=("p50", "p95", "p99", "max")):
    return " / ".join(ms(s.get(k)) for k in keys) if s else "—"


def section(work, heading="## Scale", standalone=True):
    cond = _pairs(os.path.join(work, "conditions.txt"))
    m = _pairs(os.path.join(work, "metrics.txt"))
    ev = _json(os.path.join(work, "event-latency.json"))
    syncs = _jsonl(os.path.join(work, "syncs.jsonl"))
    first = _jsonl(os.path.join(work, "first-write.jsonl"))
    driver = _jsonl(os.path.join(work, "driver.jsonl"))
    cli = stats(_numbers(os.path.join(work, "cli-promote.txt")))
    lines = []
    w = lines.append
    w(heading)
    w("")
    if not m.get("fleet.running"):
        w("not run")
        w("")
        return lines
    n = int(m["fleet.running"])
    kind = "pause" if " --event-kind pause" in cond.get("command", " --event-kind pause") else "stop"
    kinds = ("pause", "unpause") if kind == "pause" else ("stop", "start")
    reused = cond.get("reused") == "yes"
    if standalone:
        w(f"Measured by `bench/scale.sh` on its own (raw data: `target/bench/{os.path.basename(work)}/`), at another "
          "time than the sections above: its own conditions follow.")
    else:
        w("Measured by `bench/scale.sh`, run by this `bench/run.sh` (raw data: `scale/` in the directory above).")
    w("")
    w(f"- Command: `{cond.get('command', '?')}`{' (fleet reused from an earlier `--keep` run)' if reused else ''}; "
      f"wall time {m.get('wall_s', '?')} s")
    w(f"- When / code: {cond.get('date', '?')}, commit {cond.get('commit', '?')}")
    w(f"- Machine: {cond.get('cpu', '?')} cores, {cond.get('memory_gb', '?')} GB RAM, Linux {cond.get('kernel', '?')}, "
      f"Docker {cond.get('docker', '?')}; load average at start {cond.get('loadavg_start', '?')}, at end "
      f"{cond.get('loadavg_end', '?')} (a shared machine)")
    w(f"- Fleet: {n:,} idle `pointsman-demo` containers (no healthcheck) of {int(m.get('fleet.requested', n)):,} requested, "
      f"{n // 2:,} apps × 2 slots (blue stable, green candidate), on bridge networks of ≤ 500; "
      f"{m.get('fleet.created', '?')} created by this run in {m.get('fleet.create_s', '?')} s (`docker run`, 4 in parallel); "
      f"image `{cond.get('image', '?')}`")
    w("- Controller: `pointsman run`, release build, on the host, `POINTSMAN_LOG=pointsman=debug --log-format json`, "
      "a fresh directory; A with the default `--resync-interval` (60 s), B (restart) with "
      f"`--resync-interval` from the command")
    w("")
    w("| figure | value | target |")
    w("|---|---|---|")
    w(f"| labelled containers running | {n:,} | 1,000 |")
    if ev:
        a = ev["all_ms"]
        w(f"| **event → file renamed**, all {a['n']} events, p50 / p95 / p99 / max | {pctl(a)} | "
          f"{target(a['p50'], 5, what='p50')}; {target(a['p99'], 20, what='p99')} |")
        for k in kinds:
            s = ev.get(f"{k}_ms")
            if s and s["n"]:
                label = {"pause": "`pause` event", "unpause": "`unpause` event",
                         "stop": "`docker stop` (its `kill` event, else `die`)", "start": "`start` event"}[k]
                w(f"| {label} → file renamed, p50 / p95 / p99 / max (n={s['n']}) | {pctl(s)} | |")
        s = ev["render_write_ms"]
        w(f"| of which render + write (`us=` of the `files updated` line), p50 / p99 / max | "
          f"{pctl(s, ('p50', 'p99', 'max'))} | |")
        w(f"| events that may have waited for a listing of Docker (a periodic resync started less than the longest "
          f"listing, {ms(ev.get('longest_listing_ms'))}, before the event) | {ev['with_listing_in_between']} of {a['n']} | |")
        w(f"| events without a matching write | {ev['unmatched']} of {ev['events']} | 0 |")
        if kind == "stop":
            w(f"| stops whose file was rewritten before the process exited (`die`) | {ev['stops_written_before_die']} of {ev['stop_ms']['n']} | |")
    else:
        w("| event → file renamed | not measured | |")
    seen = stats([d["seen_ms"] for d in driver if d.get("seen_ms") is not None])
    api = stats([d["api_ms"] for d in driver])
    if seen:
        w(f"| cross-check, driver's clock: API request sent → `files updated` read from the log, p50 / p99 (n={seen['n']}); "
          f"the API call alone, p50 | {ms(seen['p50'])} / {ms(seen['p99'])}; {ms(api['p50'])} | |")
    w(f"| time for the {ev['events'] if ev else '?'} events (closed loop, {m.get('a.events_s', '?')} s) "
      f"and controller CPU meanwhile | {m.get('a.events_s', '?')} s; {m.get('a.events_cpu_pct', '?')} % of a core, "
      f"{m.get('a.events_cpu_s', '?')} CPU s | |")
    rss_ev = m.get("a.rss_after_events_kb")
    w(f"| controller RSS / VmHWM 3 s after the initial sync | {mb(m.get('a.rss_after_sync_kb'))} / {mb(m.get('a.hwm_after_sync_kb'))} | |")
    w(f"| **controller RSS** / VmHWM after the {ev['events'] if ev else '?'} events | {mb(rss_ev)} / "
      f"{mb(m.get('a.hwm_after_events_kb'))} | {target(int(rss_ev) / 1024 if rss_ev else None, 16, 'MB', 'RSS')} |")
    w(f"| controller RSS / VmHWM at the end (after the CLI runs) | {mb(m.get('a.rss_end_kb'))} / {mb(m.get('a.hwm_end_kb'))} | |")
    w(f"| controller CPU idle (10 s, after the sync) | {m.get('a.idle_cpu_pct', '?')} % of a core | |")
    w(f"| meanwhile: the fleet's own CPU (its containers' cgroups), all the machine's CPU busy, load average | "
      f"{m.get('fleet.idle_cpu_pct', '?')} % of a core; {m.get('machine.idle_busy_pct', '?')} % of all cores; "
      f"{m.get('machine.idle_loadavg', '?')} | fleet ≈ 0 |")
    if first:
        f0 = first[0]
        written = f0.get("written", "")
        count = written.count('"') // 2 if isinstance(written, str) else len(written)
        w(f"| first reconcile (fresh directory): render + write of {count:,} files (`us=`) | {ms(f0.get('us', 0) / 1000)} | |")
    if syncs:
        vals = ", ".join(f"{s.get('ms')} ms" for s in syncs)
        w(f"| full listing at start (`synced with Docker`: list + inspect {syncs[0].get('containers')} containers; "
          f"A, B) | {vals} | |")
    if cli:
        w(f"| **CLI `pointsman promote s0`** wall time, controller running, p50 / p95 / max (n={cli['n']}, "
          f"{m.get('cli.tool', '?')}) | {ms(cli['p50'])} / {ms(cli['p95'])} / {ms(cli['max'])} | "
          f"{target(cli['p50'], 50, what='p50')} |")
    if m.get("docker.list_all_ms"):
        w(f"| for comparison, Docker's listing of all {n:,} labelled containers (what the CLI lists), median of 5 | "
          f"{ms(float(m['docker.list_all_ms']))} | |")
        w(f"| Docker's listing filtered to one app's label value, median of 5 | {ms(float(m['docker.list_app_ms']))} | |")
    w(f"| files written by a restart with nothing changed (B's first reconcile: `files updated` lines) | "
      f"{m.get('b.first_reconcile_writes', '?')} | 0 |")
    rw = m.get("b.resync_writes")
    w(f"| **files written by {m.get('b.resyncs', '?')} unchanged periodic resyncs**: `files updated` lines | {rw} | "
      f"{'0: **met**' if rw == '0' else '0: **missed**' if rw else ''} |")
    if m.get("b.inotify_events") is not None:
        ie = m["b.inotify_events"]
        w(f"| the same from inotifywait on the directory: create / write / rename / delete events, lock file excluded "
          f"(renames) | {ie} ({m.get('b.inotify_renames', '?')}) | {'0: **met**' if ie == '0' else '0: **missed**'} |")
    w(f"| controller CPU per unchanged periodic resync (list + inspect + render + compare) | {m.get('b.resync_cpu_s', '?')} CPU s | |")
    w(f"| controller B RSS after its start and the resyncs | {mb(m.get('b.rss_kb'))} | |")
    w("")
    ev_n = ev["events"] if ev else "?"
    w("Notes:")
    w("")
    if kind == "pause":
        w(f"- **Events**: `bench/event_driver.py` pauses a container through Docker's API, waits until the controller "
          f"logs the write of that app's file (or 5 s), waits the `--gap-ms`, unpauses it the same way, and moves on "
          f"to the next app (s1, s2, …; blue and green in turn; s0 is left to the CLI). Each `pause` / `unpause` makes "
          "the controller inspect that container and re-render (a paused container is no server). Closed loop: one "
          "event at a time, so the figures are one event's path, not a queue. The latency is from Docker's event time "
          "(`timeNano`) to the `files updated` line, logged after the rename and the directory fsync "
          "(`bench/event_latency.py --per-app`).")
    else:
        w("- **Events**: `bench/event_driver.py` stops (SIGTERM, 5 s grace) and starts containers through Docker's "
          "API, one app after another, waiting for each write; a stop is timed from its `kill` event.")
    w(f"- **RSS**: VmRSS / VmHWM from `/proc/PID/status` of the controller, after the initial sync and after the "
      f"{ev_n} events (same process).")
    w("- **CLI**: each timed `promote` follows an untimed `rollback` (hyperfine `--prepare`), so each one switches "
      "the app; the controller runs meanwhile. The CLI lists every labelled container; Docker's own time for that "
      "listing is the row below it.")
    w("- **Unchanged resync**: a second controller (B) on the same directory after A stopped; after its first "
      "reconcile, inotifywait watches the directory (recursively, `.pointsman/` included) through two periodic "
      "resyncs with no container change. Opening the lock file is not counted; any temp file, state or "
      "`pointsman-*.yml` write is.")
    w("")
    return lines


def splice(results_path, new_lines):
    """Replaces the '## Scale' section of results_path (up to the next '## ' heading) and drops
    the 'Reading the figures' bullets about the old scale phase, whose figures it replaces."""
    try:
        with open(results_path) as f:
            old = f.read().split("\n")
    except OSError:
        old = []
    out, i, placed = [], 0, False
    while i < len(old):
        line = old[i]
        if line.strip() == "## Scale" and not placed:
            out.extend(new_lines)
            placed = True
            i += 1
            while i < len(old) and not old[i].startswith("## "):
                i += 1
            continue
        if line.startswith("- **Controller RSS at scale**") or line.startswith("- **CLI at "):
            i += 1
            continue
        out.append(line)
        i += 1
    if not placed:
        if out and out[-1] != "":
            out.append("")
        out.extend(new_lines)
    with open(results_path, "w") as f:
        f.write("\n".join(out).rstrip("\n") + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--splice"):
        sys.exit(__doc__)
    sec = section(args[0])
    print("\n".join(sec))
    if len(args) == 3:
        splice(args[2], sec)
