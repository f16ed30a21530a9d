"""What the migration benchmarks share: a fresh sandbox per benchmark, the playbooks run as the integration
tests run them (tests/integration/playbooks/migration_harness.py), load through the sandbox gateway, and the
split of a run's time into the waits for the gateway's programming and the rest.

Not a benchmark itself (benchmarks/run.py lists the benchmarks).
"""

import importlib.util
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "tests" / "sandbox", REPO / "tests" / "integration", REPO / "tests" / "integration" / "playbooks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from igw_sandbox.cluster import Sandbox  # noqa: E402
from igw_sandbox.loadgen import LoadGenerator  # noqa: E402
from migration_harness import PlaybookRun, sandbox_vars  # noqa: E402

ZERO_DOWNTIME = "playbooks/zero_downtime.yml"
SIMPLE = "playbooks/simple.yml"
PLAYBOOK_TIMEOUT = 2400
# The tasks that wait until the simulated gateway has programmed what the run wrote (one per weight change on the
# zero-downtime path, one after the switch on the simple path): their length is the programming delay, not the tool.
PROGRAMMING_WAIT = re.compile(r"Wait once until the gateway has programmed")
# Each request of the load generators is bounded in time, and so is the whole run.
LOAD_MAX_SECONDS = 2700
# Per generator; 20 of them at 10 requests per second each need few (a request takes milliseconds).
LOAD_WORKERS = 8


def _task_timings():
    """hack/playbook-time-by-task.py, which reads the task durations that ansible.posix.profile_tasks logs."""
    spec = importlib.util.spec_from_file_location("playbook_time_by_task", REPO / "hack" / "playbook-time-by-task.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_programming_waits(durations):
    """(seconds of the tasks that wait for the gateway's programming, seconds of every other task, number of
    such waits) over (task name, seconds) pairs."""
    waits = [seconds for name, seconds in durations if PROGRAMMING_WAIT.search(name)]
    return sum(waits), sum(seconds for name, seconds in durations if not PROGRAMMING_WAIT.search(name)), len(waits)


def fresh_sandbox(name, programming_delay, scenario):
    """Sandbox `name` started anew with this programming delay and seeded with `scenario`; (sandbox, seconds
    the seed took)."""
    sandbox = Sandbox(name, None, programming_delay)
    sandbox.down()
    sandbox.up()
    started = time.monotonic()
    sandbox.seed(scenario)
    return sandbox, time.monotonic() - started


def run_playbook(sandbox, playbook, scratch, label, **extra_vars):
    """Run `playbook` to its end with profile_tasks; {"exit": code, "seconds": wall time, "waits": seconds of
    programming waits, "beyond_waits": seconds of every other task, "wait_count", "log": path}."""
    scratch = Path(scratch)
    extra = {**sandbox_vars(sandbox, scratch / "backups"), "report_dir": str(scratch / "reports"), **extra_vars}
    run = PlaybookRun(playbook, sandbox, extra, scratch / f"{label}.log")
    code = run.wait(PLAYBOOK_TIMEOUT)
    waits, beyond, count = split_programming_waits(list(_task_timings().previous_task_durations(run.log_path)))
    return {"exit": code, "seconds": run.finished - run.started, "waits": waits, "beyond_waits": beyond,
            "wait_count": count, "log": str(run.log_path), "tail": run.tail() if code else ""}


def load_generators(sandbox, total_rate, model, scratch, hostnames=(None,)):
    """One started LoadGenerator per hostname (a route's; None: the Gateway's address, as alpha-basic's route has
    no hostname), `total_rate` requests per second spread evenly over them."""
    rate = total_rate / len(hostnames)
    return [LoadGenerator(url=sandbox.gateway_url + "/v1/completions", rate=rate, duration=LOAD_MAX_SECONDS,
                          max_requests=int(rate * LOAD_MAX_SECONDS), model=model,
                          summary_path=Path(scratch) / f"load-{hostname or 'gateway'}.json",
                          headers={"Host": hostname} if hostname else None, workers=LOAD_WORKERS).start()
            for hostname in hostnames]


def stop_load(generators):
    """Stop every generator; their summaries added up: sent, ok, failed, seconds (longest), failure windows."""
    summaries = [generator.stop() for generator in generators]
    return {"sent": sum(s["sent"] for s in summaries), "ok": sum(s["ok"] for s in summaries),
            "failed": sum(s["failed"] for s in summaries),
            "seconds": max(s["finished"] - s["started"] for s in summaries),
            "failure_windows": [w for s in summaries for w in s["failure_windows"]]}
