"""The verify and report roles on the sandbox, run through ansible-runner as AWX runs them.

Each test runs verify_and_report.yml: the verify role's gates against alpha-basic,
a rescue that keeps the failed gate's measurements, and the report role. The
assertions read the report files and the set_stats artifacts.
"""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import ansible_runner
import pytest
from runner import ansible_env, run_task
from sandbox.gateway_traffic import (
    GA_POOL, GA_POOL_ID, epp_log, install_ga_pool, pool_ref, route_resolved_at_current_generation,
    set_route_backends, wait_for, wait_reply,
)

pytestmark = pytest.mark.sandbox

PLAYBOOK = Path(__file__).with_name("verify_and_report.yml")
ALPHA_GROUP = "inference.networking.x-k8s.io"
ALPHA_POOL = "vllm-llama3-8b-instruct-preview"
EPP = f"{ALPHA_POOL}-epp"
POOL_HEADER = "x-sandbox-pool"
GATES = {
    "verify_gate_name": "alpha-basic",
    "verify_gateway_name": "inference-gateway",
    "verify_routes": [{"name": "llm-route", "namespace": "default"}],
    "verify_pools": [{"group": ALPHA_GROUP, "name": ALPHA_POOL, "namespace": "default"}],
    "verify_pool_status_mode": "strict",
    "verify_epp_deployments": [{"name": EPP, "namespace": "default"}],
    "verify_probe_model": "food-review",
    "verify_probe_group_by_header": POOL_HEADER,
    "verify_wait_timeout": 60,
}
ENV_KEYS = ("ANSIBLE_CONFIG", "K8S_AUTH_KUBECONFIG", "PATH", "ANSIBLE_NOCOLOR")


class Run:
    """One ansible-runner run of the playbook: its status, report files and set_stats data."""

    def __init__(self, sandbox, tmp_path, check=False, **overrides):
        reports, private_data_dir = tmp_path / "reports", tmp_path / "runner"
        private_data_dir.mkdir()
        env = ansible_env(sandbox.kubeconfig)
        result = ansible_runner.run(
            private_data_dir=str(private_data_dir), playbook=str(PLAYBOOK), quiet=True, timeout=600,
            extravars={**GATES, **overrides, "report_dir": str(reports)},
            envvars={key: env[key] for key in ENV_KEYS}, cmdline="--check" if check else None,
        )
        self.status = result.status
        self.stdout = result.stdout.read()
        stats = [e for e in result.events if e["event"] == "playbook_on_stats"]
        self.stats = stats[0]["event_data"].get("artifact_data") if stats else None
        assert reports.is_dir(), "no report was written:\n" + self.stdout
        (self.json_path,) = reports.glob("migration-localhost-*.json")
        (self.markdown_path,) = reports.glob("migration-localhost-*.md")
        self.report = json.loads(self.json_path.read_text())
        self.markdown = self.markdown_path.read_text()
        (self.gate,) = self.report["gates"]

    def checks(self):
        return [(check["check"].split(" ")[0], check["passed"]) for check in self.gate["checks"]]


def completion_status(sandbox):
    """Status of one completion request through the sandbox gateway (loopback), 0 when none came."""
    request = urllib.request.Request(
        sandbox.gateway_url + "/v1/completions", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"model": "food-review", "prompt": "Hi", "max_tokens": 10, "temperature": 0}).encode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def scale_epp_to_zero(sandbox):
    """Scale the alpha EPP to 0 and wait (bounded) until the gateway refuses requests for its pool."""
    sandbox.kube().kubectl("scale", "deployment", EPP, "--replicas=0")
    deadline = time.monotonic() + 60
    while completion_status(sandbox) == 200:
        assert time.monotonic() < deadline, "the gateway still answers 200 a minute after the EPP went away"
        time.sleep(0.5)


def test_every_gate_passes_on_alpha_basic_and_the_report_carries_the_measurements(alpha_basic, tmp_path):
    run = Run(alpha_basic, tmp_path)

    assert run.status == "successful", run.stdout
    assert run.gate["name"] == "alpha-basic" and run.gate["passed"] is True
    assert run.checks() == [("Gateway", True), ("HTTPRoutes", True), ("endpoint", True), ("InferencePools", True),
                            ("EPP", True)]
    assert f"is programmed, address {alpha_basic.address}" in run.gate["checks"][0]["details"]
    probe = run.gate["probe"]
    assert probe["url"] == alpha_basic.gateway_url + "/v1/completions"
    assert (probe["sent"], probe["ok"], probe["failed_requests"], probe["status_codes"]) == (20, 20, 0, {"200": 20})
    assert probe["by_header"] == {f"{ALPHA_GROUP}/default/{ALPHA_POOL}": 20}
    assert probe["latency_ms"]["p95"] is not None and run.gate["warnings"] == []

    assert run.report["outcome"] == "succeeded" and run.report["failed_requests"] == 0
    assert run.stats == {
        "migration_outcome": "succeeded", "pools_migrated": [f"default/{ALPHA_POOL}"], "failed_requests": 0,
        "backup_path": None, "report_json": str(run.json_path),
        "migration_clusters": {"localhost": {
            "migration_outcome": "succeeded", "pools_migrated": [f"default/{ALPHA_POOL}"], "failed_requests": 0,
            "backup_path": None, "report_json": str(run.json_path)}},
    }
    assert "### alpha-basic: passed" in run.markdown
    assert "20 planned, 20 sent, 20 answered 2xx, 0 failed" in run.markdown
    assert f"| default/{ALPHA_POOL} | not_started |" in run.markdown


def test_the_probe_gate_fails_with_its_measurements_when_the_epp_is_gone(alpha_basic, tmp_path):
    scale_epp_to_zero(alpha_basic)

    # The EPP is listed and the wait is long: the probe, which comes first, fails the gate without that wait.
    run = Run(alpha_basic, tmp_path, verify_gate_name="alpha-basic without EPP", verify_wait_timeout=300,
              verify_probe_requests=10)

    assert run.status == "successful", run.stdout  # the rescue caught the failed gate
    assert run.gate["passed"] is False
    assert run.checks() == [("Gateway", True), ("HTTPRoutes", True), ("endpoint", False)]
    probe = run.gate["probe"]
    assert (probe["sent"], probe["ok"], probe["failed_requests"], probe["passed"]) == (10, 0, 10, False)
    assert "200" not in probe["status_codes"] and sum(probe["status_codes"].values()) == 10
    assert probe["reasons"] == ["success ratio 0.0 (0 of 10 requests answered 2xx) is below the minimum 1.0"]
    error = run.report["error"]
    assert error.startswith("Gate 'alpha-basic without EPP' failed: endpoint probe: success ratio at least 1.0.")
    assert "Measured: 0/10 requests to %s/v1/completions answered 2xx (success ratio 0.0)" % alpha_basic.gateway_url \
        in error
    assert "What to do:" in error and "EPP Deployment" in error

    assert run.report["outcome"] == "failed" and run.report["failed_requests"] == 10
    assert run.stats["migration_outcome"] == "failed" and run.stats["failed_requests"] == 10
    assert run.stats["pools_migrated"] == []
    assert "### alpha-basic without EPP: FAILED" in run.markdown
    assert "threshold not met: success ratio 0.0" in run.markdown


def test_a_v1_epp_whose_role_lacks_inference_objectives_fails_the_probe_gate_naming_the_epp(alpha_basic, tmp_path):
    ga_epp = f"{GA_POOL}-epp"
    kube = alpha_basic.kube()
    install_ga_pool(alpha_basic)
    rules = kube.get_json("role", ga_epp)["rules"]
    for rule in rules:
        rule["resources"] = [r for r in rule["resources"] if r != "inferenceobjectives"]
    kube.kubectl("patch", "role", ga_epp, "--type=json",
                 "-p", json.dumps([{"op": "replace", "path": "/rules", "value": rules}]))
    # A running EPP keeps the watch it has; the one a new pod starts is refused.
    kube.kubectl("delete", "pod", "-l", f"inferencepool={ga_epp}")
    set_route_backends(kube, [pool_ref(GA_POOL, "inference.networking.k8s.io")])
    wait_for("the route to the v1 pool to be programmed", lambda: route_resolved_at_current_generation(kube))
    wait_reply(alpha_basic, "the v1 pool's EPP to refuse requests", lambda reply: reply.status == 503
               and reply.pool == GA_POOL_ID)

    run = Run(alpha_basic, tmp_path, verify_pools=[{"group": "inference.networking.k8s.io", "name": GA_POOL,
                                                    "namespace": "default"}],
              verify_epp_deployments=[{"name": ga_epp, "namespace": "default"}], verify_probe_requests=10)

    assert run.gate["passed"] is False
    assert run.checks() == [("Gateway", True), ("HTTPRoutes", True), ("endpoint", False)]
    assert run.gate["probe"]["status_codes"] == {"503": 10}
    assert f"check the EPP Deployment default/{ga_epp} (its log" in run.report["error"]
    log = epp_log(alpha_basic, ga_epp)
    assert 'cannot list resource \\"inferenceobjectives\\"' in log, "the EPP's own RBAC error"


def test_the_epp_gate_fails_an_unavailable_epp_when_the_probe_is_off(alpha_basic, tmp_path):
    scale_epp_to_zero(alpha_basic)

    run = Run(alpha_basic, tmp_path, verify_wait_timeout=4, verify_probe=False)

    assert run.checks() == [("Gateway", True), ("HTTPRoutes", True), ("InferencePools", True), ("EPP", False)]
    assert run.gate["probe"] is None
    assert f"Deployment default/{EPP} is not available: 0 of 0 replicas available" in run.gate["checks"][-1]["details"]
    assert run.report["error"].startswith(f"Gate 'alpha-basic' failed: EPP Deployments {EPP} are available.")
    assert run.report["failed_requests"] is None and "| Failed requests | not measured |" in run.markdown


def test_the_gates_run_in_check_mode(alpha_basic, tmp_path):
    run = Run(alpha_basic, tmp_path, check=True, verify_probe_requests=5)

    assert run.status == "successful", run.stdout
    assert run.gate["passed"] is True and run.gate["probe"]["ok"] == 5
    assert run.report["check_mode"] is True and "| Check mode | yes (dry run) |" in run.markdown


def test_the_probe_module_finds_the_gateway_address_and_can_fail_the_task_itself(alpha_basic):
    found = run_task("inference_gateway.migration.endpoint_probe",
                     {"gateway_name": "inference-gateway", "listener": "http", "model": "food-review", "requests": 3},
                     alpha_basic.kubeconfig, check=True)
    scale_epp_to_zero(alpha_basic)
    refused = run_task("inference_gateway.migration.endpoint_probe",
                       {"url": alpha_basic.gateway_url + "/v1/completions", "model": "food-review", "requests": 5,
                        "min_success_ratio": 0.5, "fail_on_threshold": True}, alpha_basic.kubeconfig)

    assert found.get("failed") is not True and found["changed"] is False
    assert found["url"] == alpha_basic.gateway_url + "/v1/completions" and found["ok"] == 3 and found["passed"] is True
    assert refused["failed"] is True and refused["failed_requests"] == 5 and refused["passed"] is False
    assert refused["msg"].startswith("endpoint probe failed its thresholds: 0/5 requests to %s/v1/completions "
                                     "answered 2xx" % alpha_basic.gateway_url)
    assert "success ratio 0.0 (0 of 5 requests answered 2xx) is below the minimum 0.5" in refused["msg"]
