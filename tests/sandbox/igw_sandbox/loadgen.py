"""A bounded, fixed-rate load generator for the sandbox gateway.

    python -m igw_sandbox.loadgen --url http://127.0.10.1:80/v1/completions --rate 50 --duration 30 \\
        --max-requests 1500 --model food-review --summary out.json [--stop-file F] [--header K:V ...]

Requests are scheduled open-loop (request i is due at start + i/rate) and sent by a
bounded pool of workers, so a slow backend shows up as latency rather than as a
lower rate. It stops at the duration, at max-requests, when the stop file appears,
on SIGTERM/SIGINT, or on LoadGenerator.stop(); it never runs longer than the
duration plus one request timeout. Every request is written to a JSONL file next to
the summary (out.requests.jsonl); the summary (JSON) has sent, ok, failed, failure
windows, latency percentiles, and counts per status and per pool.

Only loopback URLs are accepted: the sandbox never sends traffic elsewhere.
"""

import argparse
import http.client
import ipaddress
import json
import math
import queue
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .gateway.api import FAILURE_HEADER
from .modelserver import POD_HEADER, POOL_HEADER

DEFAULT_PATH = "/v1/completions"
REQUEST_TIMEOUT_SECONDS = 10
MAX_WORKERS = 32
# Reconnect rather than reuse a keep-alive connection idle this long: the server may
# have closed it, and a POST that fails on a stale connection would count as a failure.
MAX_IDLE_SECONDS = 5


@dataclass
class Record:
    """One request as the client saw it. status 0 means no HTTP response (connection error or timeout)."""

    index: int
    start: float  # wall-clock time the request was sent
    latency_ms: float
    status: int
    pool: str | None
    pod: str | None
    failure: str | None

    @property
    def ok(self):
        return 200 <= self.status < 300


def _percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))]


def failure_windows(records):
    """Maximal runs of failed requests (in send order) with no success in between."""
    windows, current = [], None
    for record in sorted(records, key=lambda r: (r.start, r.index)):
        if record.ok:
            current = None
            continue
        if current is None:
            current = {"start": record.start, "end": record.start, "count": 0, "statuses": {}}
            windows.append(current)
        current["end"] = record.start
        current["count"] += 1
        current["statuses"][str(record.status)] = current["statuses"].get(str(record.status), 0) + 1
    return windows


def summarize(records, started, finished, settings):
    latencies = sorted(r.latency_ms for r in records if r.status)
    by_status, per_pool, per_pool_status, per_pod = {}, {}, {}, {}
    for record in records:
        code = str(record.status)
        by_status[code] = by_status.get(code, 0) + 1
        if record.pool:
            per_pool[record.pool] = per_pool.get(record.pool, 0) + 1
            codes = per_pool_status.setdefault(record.pool, {})
            codes[code] = codes.get(code, 0) + 1
        if record.pod:
            per_pod[record.pod] = per_pod.get(record.pod, 0) + 1
    ok = sum(1 for r in records if r.ok)
    return {
        "settings": settings,
        "started": started,
        "finished": finished,
        "sent": len(records),
        "ok": ok,
        "failed": len(records) - ok,
        "failure_windows": failure_windows(records),
        "latency_ms": {"p50": _percentile(latencies, 0.50), "p95": _percentile(latencies, 0.95),
                       "p99": _percentile(latencies, 0.99), "max": latencies[-1] if latencies else None},
        "status_codes": by_status,
        "per_pool": per_pool,
        "per_pool_status": per_pool_status,
        "per_pod": per_pod,
    }


def require_loopback(url):
    host = urlsplit(url).hostname
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise ValueError(f"{url}: the load generator only sends to loopback addresses")


class LoadGenerator:
    """Start with start(), end with stop() or let it run out; then summary() (also written to summary_path)."""

    def __init__(self, url, rate, duration, max_requests, model, summary_path, stop_file=None, headers=None,
                 workers=MAX_WORKERS):
        require_loopback(url)
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path if parts.path not in ("", "/") else DEFAULT_PATH
        self.rate, self.duration, self.max_requests = rate, duration, max_requests
        self.model = model
        self.summary_path = Path(summary_path)
        self.records_path = self.summary_path.with_name(self.summary_path.stem + ".requests.jsonl")
        self.stop_file = Path(stop_file) if stop_file else None
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.worker_count = min(workers, max_requests)
        self.settings = {"url": url, "rate": rate, "duration": duration, "max_requests": max_requests,
                         "model": model, "headers": headers or {}}
        self._stopping = threading.Event()
        self._due = queue.SimpleQueue()
        self._idle_workers = threading.Semaphore(self.worker_count)
        self._lock = threading.Lock()
        self._records = []
        self._workers = []
        self._scheduler = None
        self._result = None

    def _body(self):
        return json.dumps({"model": self.model, "prompt": "hi", "max_tokens": 10, "temperature": 0}).encode()

    def _send(self, connection, index):
        sent = time.time()
        started = time.monotonic()
        try:
            connection.request("POST", self.path, body=self._body(), headers=self.headers)
            response = connection.getresponse()
            response.read()
            status = response.status
            pool, pod, failure = (response.getheader(POOL_HEADER), response.getheader(POD_HEADER),
                                  response.getheader(FAILURE_HEADER))
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            status, pool, pod, failure = 0, None, None, type(error).__name__
        return Record(index, sent, (time.monotonic() - started) * 1000, status, pool, pod, failure)

    def _worker(self):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        last_used = time.monotonic()
        try:
            while (index := self._due.get()) is not None:
                if time.monotonic() - last_used > MAX_IDLE_SECONDS:
                    connection.close()
                record = self._send(connection, index)
                last_used = time.monotonic()
                with self._lock:
                    self._records.append(record)
                self._idle_workers.release()
        finally:
            connection.close()

    def _should_stop(self, index, deadline):
        return (self._stopping.is_set() or index >= self.max_requests or time.monotonic() >= deadline
                or (self.stop_file is not None and self.stop_file.exists()))

    def _schedule(self):
        started_wall, started = time.time(), time.monotonic()
        deadline = started + self.duration
        index = 0
        while not self._should_stop(index, deadline):
            wait = started + index / self.rate - time.monotonic()
            # Short waits, so that the stop file and stop() take effect promptly at low rates.
            if wait > 0:
                self._stopping.wait(min(wait, 0.1))
            elif self._idle_workers.acquire(timeout=0.1):
                # Only handed to an idle worker: when all are busy the request waits here, so
                # nothing is left queued when the run ends.
                self._due.put(index)
                index += 1
        for _worker in self._workers:
            self._due.put(None)
        for worker in self._workers:
            worker.join(REQUEST_TIMEOUT_SECONDS + 5)
        with self._lock:
            records = sorted(self._records, key=lambda r: r.index)
        summary = summarize(records, started_wall, time.time(), self.settings)
        self.records_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.records_path, "w") as out:
            for record in records:
                out.write(json.dumps(asdict(record)) + "\n")
        self.summary_path.write_text(json.dumps(summary, indent=1) + "\n")
        # Published last: whoever sees the summary can read both files.
        self._result = summary

    def start(self):
        self._workers = [threading.Thread(target=self._worker, name=f"loadgen worker {i}", daemon=True)
                         for i in range(self.worker_count)]
        self._scheduler = threading.Thread(target=self._schedule, name="loadgen scheduler", daemon=True)
        for thread in (*self._workers, self._scheduler):
            thread.start()
        return self

    def request_stop(self):
        """Stop scheduling requests; returns at once (safe in a signal handler)."""
        self._stopping.set()

    def stop(self):
        self.request_stop()
        return self.wait()

    def wait(self, timeout=None):
        """Wait for the run to end; returns the summary (None while still running)."""
        self._scheduler.join(timeout)
        return self._result

    def running(self):
        return self._scheduler.is_alive()

    def summary(self):
        return self._result


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m igw_sandbox.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help=f"loopback URL; a bare host:port gets {DEFAULT_PATH}")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds to send for at most")
    parser.add_argument("--max-requests", type=int, required=True, help="requests to send at most")
    parser.add_argument("--model", required=True, help='"model" field of each completion request')
    parser.add_argument("--summary", required=True, type=Path, help="where the JSON summary is written")
    parser.add_argument("--stop-file", type=Path, help="stop as soon as this file exists")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                        help="extra request header, repeatable")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.max_requests <= 0:
        parser.error("--rate, --duration and --max-requests must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    try:
        generator = LoadGenerator(args.url, args.rate, args.duration, args.max_requests, args.model, args.summary,
                                  stop_file=args.stop_file, headers={k.strip(): v.strip() for k, v in headers.items()})
    except ValueError as error:
        sys.exit(f"loadgen: {error}")
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: generator.request_stop())
    generator.start()
    # Wait in short steps so that signal handlers run in the main thread meanwhile.
    while generator.running():
        generator.wait(0.2)
    summary = generator.summary()
    print(json.dumps({k: summary[k] for k in ("sent", "ok", "failed", "per_pool", "status_codes")}))


if __name__ == "__main__":
    main()
