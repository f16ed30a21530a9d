"""The verify role's checks of one readiness read: one recorded and asserted check per kind that has objects,
in order, each with its own verdict, details, warnings and advice, from results the readiness code returns."""

import json
from pathlib import Path

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, readiness
from memory_cluster import MemoryCluster
from support import run_playbook

PLAYBOOK = Path(__file__).with_name("status_checks.yml")
GATEWAY = {"name": "inference-gateway", "namespace": "default"}
ROUTE = {"name": "llm-route", "namespace": "default"}
POOL = {"group": api.GA_GROUP, "name": "llm-ga", "namespace": "default"}
EPP = {"name": "llm-ga-epp", "namespace": "default"}


def gateway(programmed):
    return api.GATEWAY, {"metadata": dict(GATEWAY), "status": {
        "addresses": [{"value": "127.0.10.1"}],
        "conditions": [{"type": "Programmed", "status": "True" if programmed else "False", "reason": "Pending"}]}}


def route(resolved):
    conditions = [{"type": kind, "status": "True" if resolved or kind == "Accepted" else "False",
                   "reason": "BackendNotFound", "observedGeneration": 2} for kind in ("Accepted", "ResolvedRefs")]
    return api.HTTP_ROUTE, {"metadata": dict(ROUTE, generation=2),
                            "status": {"parents": [{"parentRef": {"name": "inference-gateway"}, "conditions": conditions}]}}


def pool_without_status():
    return api.GA_POOL, {"metadata": {"namespace": "default", "name": "llm-ga"}, "status": {}}


def epp(available):
    return api.DEPLOYMENT, {"metadata": dict(EPP), "spec": {"replicas": 1}, "status": {
        "availableReplicas": int(available),
        "conditions": [{"type": "Available", "status": "True" if available else "False", "reason": "Minimum"}]}}


def check(kind, objects):
    return {"kind": kind, "objects": objects, "check": "%s check" % kind, "advice": "look at the %s" % kind}


def front(objects, gateways, routes):
    """The first read of a gate: Gateways and HTTPRoutes."""
    return {"result": readiness.readiness(MemoryCluster(*objects), gateways=gateways, routes=routes),
            "checks": [check("gateways", gateways), check("routes", routes)]}


def back(objects, pools, deployments):
    """The second read of a gate: InferencePools and EPP Deployments."""
    return {"result": readiness.readiness(MemoryCluster(*objects), pools=pools, deployments=deployments),
            "checks": [check("pools", pools), check("epp_deployments", deployments)]}


CASES = {
    "all ready": front([gateway(True), route(True)], [GATEWAY], [ROUTE]),
    "no routes": front([gateway(True)], [GATEWAY], []),
    "routes not ready": front([gateway(True), route(False)], [GATEWAY], [ROUTE]),
    "neither ready": front([gateway(False), route(False)], [GATEWAY], [ROUTE]),
    "pool tolerated, EPP down": back([pool_without_status(), epp(False)], [POOL], [EPP]),
    "no pools, EPP up": back([epp(True)], [], [EPP]),
    "read failed": {"result": {"failed": True, "msg": "the API server is unreachable"},
                    "checks": [check("pools", []), check("epp_deployments", [EPP])]},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case through the role once (one ansible-playbook run keeps this fast)."""
    tmp_path = tmp_path_factory.mktemp("status")
    output = tmp_path / "cases.json"
    extra = {"status_cases": list(CASES.values()), "status_test_output": str(output)}
    run_playbook(PLAYBOOK, "-e", json.dumps(extra), env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    return dict(zip(CASES, json.loads(output.read_text())))


def test_one_read_records_one_check_per_kind_in_order(results):
    assert results["all ready"] == {"error": None, "warnings": [], "checks": [
        {"check": "gateways check", "passed": True,
         "details": "Gateway default/inference-gateway is programmed, address 127.0.10.1"},
        {"check": "routes check", "passed": True,
         "details": "HTTPRoute default/llm-route is accepted with resolved refs by every parent at generation 2"}]}


def test_a_kind_without_objects_records_no_check(results):
    assert [c["check"] for c in results["no routes"]["checks"]] == ["gateways check"]
    assert results["no routes"]["error"] is None
    assert [c["check"] for c in results["no pools, EPP up"]["checks"]] == ["epp_deployments check"]


def test_a_kind_that_is_not_ready_fails_its_own_assert_with_its_own_advice(results):
    case = results["routes not ready"]

    assert [(c["check"], c["passed"]) for c in case["checks"]] == [("gateways check", True), ("routes check", False)]
    assert "ResolvedRefs is False (reason BackendNotFound" in case["checks"][1]["details"]
    assert case["error"].startswith("Gate 'status-only' failed: routes check. Measured: HTTPRoute default/llm-route")
    assert case["error"].endswith("What to do: look at the routes")


def test_when_both_kinds_fail_the_first_fails_first(results):
    case = results["neither ready"]

    assert [(c["check"], c["passed"]) for c in case["checks"]] == [("gateways check", False)]
    assert "Gateway default/inference-gateway is not programmed" in case["error"]
    assert case["error"].endswith("What to do: look at the gateways")


def test_a_tolerated_pool_passes_with_a_warning_and_the_epp_fails_after_it(results):
    case = results["pool tolerated, EPP down"]

    assert [(c["check"], c["passed"]) for c in case["checks"]] == [("pools check", True), ("epp_deployments check", False)]
    assert case["warnings"] == [case["checks"][0]["details"]]
    assert "(pool status mode tolerant lets it pass)" in case["warnings"][0]
    assert "Deployment default/llm-ga-epp is not available: 0 of 1 replicas available" in case["checks"][1]["details"]


def test_a_read_that_failed_fails_the_first_kind_asked_with_the_modules_message(results):
    assert results["read failed"] == {
        "warnings": [], "checks": [{"check": "epp_deployments check", "passed": False,
                                    "details": "the check could not run: the API server is unreachable"}],
        "error": "Gate 'status-only' failed: epp_deployments check. Measured: the check could not run: the API server "
                 "is unreachable. What to do: look at the epp_deployments"}
