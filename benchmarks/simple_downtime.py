"""Benchmark: the downtime of the simple path, against the gateway's programming delay.

Method: a fresh sandbox (`bench-simple`, `up --programming-delay 10`), `seed alpha-basic`, then the load
generator (igw_sandbox.loadgen) sends LOAD_RATE completions per second of the base model through the Gateway
from before `playbooks/simple.yml` starts until it has ended, and the playbook runs as the integration tests run
it (tests/integration/playbooks/migration_harness.py: PlaybookRun with sandbox_vars, the defaults pointed at the
sandbox's mirrors). The downtime is what the clients saw: from the first failed request to the last one (the
load generator's failure windows, as test_simple_migrates_alpha_basic_and_reports_the_downtime_it_measured reads
them), with 1/LOAD_RATE of resolution. The playbook's own measure (its report's downtime_seconds) is shown beside
it. Target: downtime at most the programming delay plus 5 s.

    PYTHONPATH=tests/sandbox .venv/bin/python benchmarks/simple_downtime.py
"""

import json
import tempfile
import time

import migration_runs
from migration_harness import BASE_MODEL, read_reports

NAME = "bench-simple"
PROGRAMMING_DELAY = 10.0
MARGIN_SECONDS = 5.0
LOAD_RATE = 50
# Traffic before the run starts, so that the first requests show the preview pool serving.
LEAD_SECONDS = 3


def client_downtime(failure_windows):
    """Seconds from the first failed request to the last one; 0 when none failed."""
    if not failure_windows:
        return 0.0
    return max(w["end"] for w in failure_windows) - min(w["start"] for w in failure_windows)


def run_default():
    sandbox, seed_seconds = migration_runs.fresh_sandbox(NAME, PROGRAMMING_DELAY, "alpha-basic")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-simple-") as scratch:
            generators = migration_runs.load_generators(sandbox, LOAD_RATE, BASE_MODEL, scratch)
            time.sleep(LEAD_SECONDS)
            try:
                run = migration_runs.run_playbook(sandbox, migration_runs.SIMPLE, scratch, "simple")
            finally:
                traffic = migration_runs.stop_load(generators)
            if run["exit"] != 0:
                raise RuntimeError(f"simple.yml failed:\n{run['tail']}")
            (report,) = read_reports(f"{scratch}/reports")
    finally:
        sandbox.down()
    downtime = client_downtime(traffic["failure_windows"])
    limit = PROGRAMMING_DELAY + MARGIN_SECONDS
    return {"seed alpha-basic seconds": round(seed_seconds, 1),
            "target": f"downtime at most {limit:g} s (programming delay {PROGRAMMING_DELAY:g} s + {MARGIN_SECONDS:g} s)",
            "rows": [{"programming_delay_s": PROGRAMMING_DELAY, "client_downtime_s": round(downtime, 1),
                      "ratio_to_delay_plus_5": round(downtime / limit, 2), "target_met": downtime <= limit,
                      "report_downtime_s": report["downtime_seconds"], "sent": traffic["sent"],
                      "failed": traffic["failed"], "playbook_s": round(run["seconds"], 1)}]}


if __name__ == "__main__":
    print(json.dumps(run_default(), indent=1))
