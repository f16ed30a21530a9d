"""Two sandboxes as a fleet: zero_downtime.yml migrates them canary first, and stops at a failing canary.

Each host of the inventory is one sandbox, reached through its own kubeconfig
(migration_kubeconfig); the default kubeconfig (K8S_AUTH_KUBECONFIG) names no
file, so a task that ignored the host's kubeconfig would fail. The playbook's own
default rollout (one cluster, then half, then the rest) takes the canary alone
first. Load runs through both gateways for the whole successful run.
"""

import http.client
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from cluster_state import (ALPHA_SERVED_BY, BASE_MODEL, GA_SERVED_BY, ClusterState, assert_migrated,
                           assert_untouched)
from igw_sandbox.loadgen import LoadGenerator
from igw_sandbox.modelserver import POOL_HEADER
from igw_sandbox.waits import wait_until
from runner import run_playbook

pytestmark = pytest.mark.sandbox

PLAYBOOK = "playbooks/zero_downtime.yml"
GROUP = "inference_fleet"
CANARY, SECOND = "canary", "second"
RUN_TIMEOUT = 2700
SETTLE_SECONDS = 120
# Background requests on each gateway during the run: bounded in rate, count and time.
LOAD_RATE = 5
LOAD_MAX_SECONDS = 2400
LOAD_MAX_REQUESTS = LOAD_RATE * LOAD_MAX_SECONDS
OUTPUT_TAIL = 8000


def recap(output, host):
    match = re.search(r"^%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % host, output,
                      re.MULTILINE)
    return match and dict(zip(("ok", "changed", "unreachable", "failed"), (int(n) for n in match.groups())))


@pytest.fixture(scope="module")
def fleet(sandbox_factory):
    return {CANARY: sandbox_factory("fleet-" + CANARY), SECOND: sandbox_factory("fleet-" + SECOND)}


@pytest.fixture
def seeded_fleet(fleet):
    for sandbox in fleet.values():
        sandbox.reset()
        sandbox.seed("alpha-basic")
    for name, sandbox in fleet.items():
        wait_until("the gateway of %s to serve the preview pool" % name,
                   lambda: served_by(sandbox) == ALPHA_SERVED_BY, SETTLE_SECONDS, interval=0.5)
    return fleet


def served_by(sandbox):
    """The pool that answered one request through the sandbox's gateway, or None."""
    connection = http.client.HTTPConnection(sandbox.address, 80, timeout=10)
    try:
        connection.request("POST", "/v1/completions", headers={"Content-Type": "application/json"},
                           body=json.dumps({"model": BASE_MODEL, "prompt": "hi", "max_tokens": 10}))
        response = connection.getresponse()
        response.read()
        return response.getheader(POOL_HEADER) if response.status == 200 else None
    except OSError:
        return None
    finally:
        connection.close()


def write_inventory(tmp_path, fleet, host_vars):
    """The shape of playbooks/inventory/fleet.example.yml, pointing at the sandboxes."""
    inventory = {GROUP: {
        "vars": {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "migration_backup_dest": str(tmp_path / "backups" / "{{ inventory_hostname }}"),
            "migration_accept_model_name_changes": True,
            "migration_pause_seconds": 2,
            "report_dir": str(tmp_path / "reports"),
            # Every cluster takes the chart and CRDs from the organisation's one mirror (the canary sandbox's).
            "migration_gie_download_url": fleet[CANARY].env["GIE_DOWNLOAD_URL"],
            "migration_chart_registry": fleet[CANARY].env["GIE_CHART_REGISTRY"],
        },
        "hosts": dict((name, dict({"migration_kubeconfig": sandbox.kubeconfig, "migration_helm_binary": sandbox.helm},
                                  **host_vars.get(name, {})))
                      for name, sandbox in fleet.items()),
    }}
    path = tmp_path / "fleet.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def run_fleet(tmp_path, fleet, host_vars=None):
    completed = run_playbook(PLAYBOOK, tmp_path / "no-default-cluster.kubeconfig",
                             extra_vars={"migration_hosts": GROUP},
                             env={"SSL_CERT_FILE": fleet[CANARY].env["SSL_CERT_FILE"]},
                             inventory=write_inventory(tmp_path, fleet, host_vars or {}), timeout=RUN_TIMEOUT)
    return completed, completed.stdout[-OUTPUT_TAIL:] + completed.stderr[-OUTPUT_TAIL:]


def cluster_report(tmp_path, cluster):
    paths = sorted((tmp_path / "reports").glob("migration-%s-*.json" % cluster))
    return json.loads(paths[-1].read_text()) if paths else None


def fleet_report(tmp_path):
    (json_path,) = (tmp_path / "reports").glob("fleet-*.json")
    assert json_path.with_suffix(".md").read_text().startswith("# Fleet migration report")
    return json.loads(json_path.read_text())


def compact_utc(iso):
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y%m%dT%H%M%SZ")


def test_the_fleet_is_migrated_canary_first_with_zero_failed_requests(seeded_fleet, tmp_path):
    loads = dict((name, LoadGenerator(url=sandbox.gateway_url + "/v1/completions", rate=LOAD_RATE,
                                      duration=LOAD_MAX_SECONDS, max_requests=LOAD_MAX_REQUESTS, model=BASE_MODEL,
                                      summary_path=tmp_path / ("load-%s.json" % name)))
                 for name, sandbox in seeded_fleet.items())
    for load in loads.values():
        load.start()
    try:
        completed, output = run_fleet(tmp_path, seeded_fleet)
    finally:
        traffic = dict((name, load.stop()) for name, load in loads.items())

    assert completed.returncode == 0, output
    for name, sandbox in seeded_fleet.items():
        assert recap(completed.stdout, name)["failed"] == 0, output
        # Every request through this cluster's gateway succeeded, first on the preview pool, then on v1.
        assert traffic[name]["sent"] >= 100, traffic[name]
        assert traffic[name]["failed"] == 0, (name, traffic[name]["failure_windows"])
        assert set(traffic[name]["per_pool"]) == {ALPHA_SERVED_BY, GA_SERVED_BY}, traffic[name]["per_pool"]
        assert_migrated(ClusterState(sandbox.kubeconfig))

    reports = dict((name, cluster_report(tmp_path, name)) for name in seeded_fleet)
    for report in reports.values():
        assert report["outcome"] == "succeeded" and report["failed_requests"] == 0, report["error"]
    # Canary first: the second cluster's backup, its first step, came after the canary's report, its last.
    assert Path(reports[SECOND]["backup_path"]).name >= compact_utc(reports[CANARY]["generated_at"])

    fleet = fleet_report(tmp_path)
    assert fleet["outcome"] == "succeeded"
    assert [c["cluster"] for c in fleet["clusters"]] == [CANARY, SECOND]
    assert fleet["summary"] == {"clusters": 2, "succeeded": 2, "failed": 0, "rolled_back": 0, "not_reached": 0,
                                "pools_migrated": 2, "failed_requests": 0}
    for entry in fleet["clusters"]:
        assert entry["state_before"]["pools"] == [{"pool": "default/vllm-llama3-8b-instruct-preview",
                                                   "phase": "not_started"}]
        assert entry["changed_count"] > 0 and entry["gates"] and all(g["passed"] for g in entry["gates"])
        assert entry["backup_path"] == reports[entry["cluster"]]["backup_path"]


def test_a_canary_failing_its_gate_stops_the_run_and_the_second_cluster_is_untouched(seeded_fleet, tmp_path):
    second = ClusterState(seeded_fleet[SECOND].kubeconfig)
    before = second.snapshot()
    # Not a vacuous comparison: the preview stack, its CRDs and its helm release are in it.
    kinds = set(key[:2] for key in before)
    assert {("inference.networking.x-k8s.io", "inferencepools"), ("inference.networking.x-k8s.io", "inferencemodels"),
            ("gateway.networking.k8s.io", "httproutes"), ("apps", "deployments"),
            ("apiextensions.k8s.io", "customresourcedefinitions")} <= kinds
    assert any(key[1] == "secrets" and obj.get("type") == "helm.sh/release.v1" for key, obj in before.items())

    # The canary's pool is probed with a model nobody serves, through the documented override.
    completed, output = run_fleet(tmp_path, seeded_fleet, {CANARY: {"migration_probe_targets": [
        {"pool": "default/vllm-llama3-8b-instruct-preview", "model": "no-such-model"}]}})

    assert completed.returncode != 0, output
    assert recap(completed.stdout, CANARY)["failed"] == 1, output
    # No task ran on the second cluster, and it is exactly as it was.
    assert recap(completed.stdout, SECOND) is None and "[%s]" % SECOND not in completed.stdout, output
    assert cluster_report(tmp_path, SECOND) is None
    assert_untouched(before, second.snapshot())

    canary = cluster_report(tmp_path, CANARY)
    assert canary["outcome"] == "failed"
    assert canary["gates"][-1]["name"].startswith("phase 1") and not canary["gates"][-1]["passed"]
    assert canary["gates"][-1]["probe"]["failed_requests"] > 0
    fleet = fleet_report(tmp_path)
    assert fleet["outcome"] == "failed"
    assert fleet["failed_clusters"] == [CANARY] and fleet["not_reached"] == [SECOND]
    assert fleet["clusters"][0]["error"] == canary["error"] != ""
    assert fleet["clusters"][1] == {"cluster": SECOND, "outcome": "not_reached"}
