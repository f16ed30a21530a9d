"""Benchmark: requests per second through the sandbox gateway and a real endpoint picker.

Method: a fresh sandbox (`bench-gateway`), `seed alpha-basic` (the v0.3.0 chart's preview pool, its
v0.3.0 EPP and three model-server pods with a 5 ms completion latency), then, once the EPP answers, the
load generator (igw_sandbox.loadgen, open loop, 32 workers, keep-alive) sends `food-review`
completions to the Gateway's address for DURATION seconds at each requested rate. Reported per rate:
requests sent and failed, the achieved rate (successful requests per second of the run), p95 latency,
how the EPP spread them over the pods, and the CPU seconds each sandbox process used during the run.

    PYTHONPATH=tests/sandbox .venv/bin/python benchmarks/gateway_throughput.py [--rates 200,300] [--duration 15]

Prints the figures as JSON; `make bench` (benchmarks/run.py) puts them into docs/benchmarks.md.
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from igw_sandbox import processes
from igw_sandbox.cluster import Sandbox
from igw_sandbox.loadgen import LoadGenerator

NAME = "bench-gateway"
MODEL = "food-review"
READY_TIMEOUT_SECONDS = 120
DEFAULT_RATES = (200.0, 300.0)
DEFAULT_DURATION = 15.0


def _cpu_seconds(pids):
    """{command name: user+system CPU seconds} of the given processes (children included once reaped)."""
    ticks = os.sysconf("SC_CLK_TCK")
    usage = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = _component(pid)
        usage[name] = usage.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return usage


def _component(pid):
    """A process's program name, or for Python the module it runs (the gateway: igw_sandbox.gateway)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return Path(argv[0]).name


def _wait_until_served(url):
    parts = urlsplit(url)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    body = json.dumps({"model": MODEL, "prompt": "hi"})
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            connection.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"the gateway did not serve {MODEL} within {READY_TIMEOUT_SECONDS}s")


def run(rates, duration):
    sandbox = Sandbox(NAME, None, None)
    started = time.monotonic()
    sandbox.up()
    up_seconds = time.monotonic() - started
    sandbox.reset()
    started = time.monotonic()
    sandbox.seed("alpha-basic")
    seed_seconds = time.monotonic() - started
    results = []
    try:
        _wait_until_served(sandbox.gateway_url)
        for rate in rates:
            pids = processes.sandbox_pids(sandbox.layout.root)
            before = _cpu_seconds(pids)
            with tempfile.TemporaryDirectory() as scratch:
                summary = LoadGenerator(f"{sandbox.gateway_url}/v1/completions", rate, duration, int(rate * duration),
                                        MODEL, Path(scratch) / "summary.json").start().wait()
            after = _cpu_seconds(pids)
            elapsed = summary["finished"] - summary["started"]
            results.append({
                "requested_rate": rate, "sent": summary["sent"], "failed": summary["failed"],
                "achieved_rate": round(summary["ok"] / elapsed, 1), "p95_ms": round(summary["latency_ms"]["p95"]),
                "per_pod": sorted(summary["per_pod"].values()),
                "cpu_seconds": {name: round(after[name] - before.get(name, 0.0), 1) for name in sorted(after)},
                "seconds": round(elapsed, 1)})
            time.sleep(2)
    finally:
        sandbox.down()
    return {"warm up seconds": round(up_seconds, 1), "seed alpha-basic seconds": round(seed_seconds, 1),
            "rows": results}


def run_default():
    return run(DEFAULT_RATES, DEFAULT_DURATION)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in DEFAULT_RATES),
                        help="comma-separated requested rates")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION, help="seconds per rate")
    args = parser.parse_args(argv)
    print(json.dumps(run([float(r) for r in args.rates.split(",")], args.duration), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
