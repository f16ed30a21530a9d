"""The load generator's CLI against the sandbox gateway: its summary matches what the gateway served,
including a failure window caused by taking the endpoint picker away for a while."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gateway_traffic import ALPHA_POOL, ALPHA_POOL_ID, gateway_stats, programming_delay, stats_delta, wait_for, \
    wait_serving

pytestmark = pytest.mark.sandbox

SANDBOX_DIR = Path(__file__).resolve().parents[2] / "sandbox"
EPP = f"{ALPHA_POOL}-epp"
RATE = 20
DURATION = 16


def _available_replicas(kube):
    return kube.get_json("deployment", EPP).get("status", {}).get("availableReplicas", 0)


def test_summary_matches_what_the_gateway_served_through_an_outage(alpha_basic, tmp_path):
    kube = alpha_basic.kube()
    wait_serving(alpha_basic)
    delay = programming_delay(alpha_basic)
    before = gateway_stats(alpha_basic)
    summary_path = tmp_path / "run.json"
    run = subprocess.Popen(
        [sys.executable, "-m", "igw_sandbox.loadgen", "--url", alpha_basic.gateway_url, "--rate", str(RATE),
         "--duration", str(DURATION), "--max-requests", str(RATE * DURATION), "--model", "food-review",
         "--summary", str(summary_path)],
        env={**os.environ, "PYTHONPATH": str(SANDBOX_DIR)}, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        kube.kubectl("scale", "deployment", EPP, "--replicas=0")
        wait_for("the EPP to have no available replica", lambda: _available_replicas(kube) == 0)
        time.sleep(delay + 2)
        kube.kubectl("scale", "deployment", EPP, "--replicas=1")
        stdout = run.communicate(timeout=DURATION + 30)[0]
    finally:
        run.kill()
    assert run.returncode == 0
    summary = json.loads(summary_path.read_text())
    assert json.loads(stdout)["sent"] == summary["sent"]
    served = stats_delta(before, gateway_stats(alpha_basic))

    assert summary["sent"] == served["requests"]
    assert summary["status_codes"] == served["by_status"]
    assert summary["per_pool_status"] == served["by_pool"]
    assert summary["ok"] > 0 and summary["failed"] > 0
    assert set(summary["per_pool"]) == {ALPHA_POOL_ID}
    windows = summary["failure_windows"]
    assert sum(w["count"] for w in windows) == summary["failed"]
    assert {code for w in windows for code in w["statuses"]} == {"503"}
    assert windows[0]["end"] - windows[0]["start"] >= 1.0
    records = [json.loads(line) for line in summary_path.with_name("run.requests.jsonl").read_text().splitlines()]
    assert len(records) == summary["sent"]
    assert sum(1 for r in records if r["status"] == 503) == summary["failed"]
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] <= summary["latency_ms"]["p99"]
