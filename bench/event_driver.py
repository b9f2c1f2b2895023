#!/usr/bin/env python3
"""Drives container events for the controller's event-latency measurement (bench/scale.sh).

  event_driver.py --targets FILE --events M --kind pause|stop --log CONTROLLER_LOG
                  [--gap-ms MS] [--timeout-s S] [--socket PATH]   (JSON lines on stdout)

FILE has one `CONTAINER APP` per line. The driver walks it in order, wrapping around, and for
each container makes two events: `pause` then `unpause` (kind pause), or `stop` (SIGTERM, 5 s
grace) then `start` (kind stop), until M events are made. It talks to Docker's API on the Unix
socket directly (no CLI process per event, so the machine's two cores stay with Docker and the
controller).

Closed loop: after each request it waits until the controller logs a `files updated` line that
writes `pointsman-APP.yml` (or S seconds pass), then MS milliseconds more, then makes the next
event. Events therefore never queue behind each other, and each measures one event's path
through the controller. The latency itself is computed afterwards by bench/event_latency.py
from Docker's event times; the lines printed here (request time, API time, time until the
driver saw the log line) are a cross-check.
"""
import argparse
import http.client
import json
import socket
import sys
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("docker", timeout=60)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.unix_path)


class Docker:
    def __init__(self, path):
        self.path = path
        self.conn = UnixHTTPConnection(path)

    def post(self, url):
        for attempt in (1, 2):
            try:
                self.conn.request("POST", url, headers={"Content-Length": "0"})
                r = self.conn.getresponse()
                body = r.read()
                return r.status, body
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = UnixHTTPConnection(self.path)
                if attempt == 2:
                    raise


class LogTail:
    """Reads the controller's JSON log as it grows."""

    def __init__(self, path):
        self.f = open(path)
        self.f.seek(0, 2)
        self.partial = ""

    def wait_for_write(self, file_name, deadline):
        while True:
            chunk = self.f.read()
            if chunk:
                data = self.partial + chunk
                lines = data.split("\n")
                self.partial = lines.pop()
                for line in lines:
                    if '"files updated"' in line and f'\\"{file_name}\\"' in line:
                        return time.time()
            if time.time() >= deadline:
                return None
            time.sleep(0.001)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--kind", choices=("pause", "stop"), default="pause")
    ap.add_argument("--log", required=True)
    ap.add_argument("--gap-ms", type=float, default=50)
    ap.add_argument("--timeout-s", type=float, default=5)
    ap.add_argument("--socket", default="/var/run/docker.sock")
    a = ap.parse_args()
    with open(a.targets) as f:
        targets = [line.split() for line in f if line.strip()]
    if not targets:
        sys.exit("event_driver: no targets")
    actions = {"pause": (("pause", "/containers/{}/pause"), ("unpause", "/containers/{}/unpause")),
               "stop": (("stop", "/containers/{}/stop?t=5"), ("start", "/containers/{}/start"))}[a.kind]
    docker = Docker(a.socket)
    tail = LogTail(a.log)
    made = timeouts = 0
    i = 0
    while made < a.events:
        container, app = targets[i % len(targets)]
        i += 1
        for action, url in actions:
            if made >= a.events:
                break
            t0 = time.time()
            status, body = docker.post(url.format(container))
            t1 = time.time()
            if status not in (204, 304):
                sys.exit(f"event_driver: {action} {container}: HTTP {status}: {body[:200]!r}")
            seen = tail.wait_for_write(f"pointsman-{app}.yml", t1 + a.timeout_s)
            timeouts += seen is None
            made += 1
            print(json.dumps({"container": container, "app": app, "action": action, "sent": t0,
                              "api_ms": round((t1 - t0) * 1000, 3),
                              "seen_ms": None if seen is None else round((seen - t0) * 1000, 3)}), flush=True)
            time.sleep(a.gap_ms / 1000)
    print(f"event_driver: {made} events, {timeouts} without a write seen within {a.timeout_s} s", file=sys.stderr)


if __name__ == "__main__":
    main()
