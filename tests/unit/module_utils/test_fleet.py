import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import fleet
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

PROBE = {"sent": 20, "ok": 20, "failed_requests": 0, "success_ratio": 1.0, "requests": 20,
         "latency_ms": {"p50": 11.2, "p95": 23.5, "p99": 24.5, "max": 24.5}, "status_codes": {"200": 20}}
PASSED_GATE = {"name": "phase 1: v1 stack beside preview (v1 at 0 %)", "passed": True, "probe": PROBE,
               "checks": [{"check": "Gateway default/inference-gateway is Programmed", "details": "programmed",
                           "passed": True}]}
FAILED_GATE = {"name": "phase 1: v1 stack beside preview (v1 at 0 %)", "passed": False,
               "probe": dict(PROBE, ok=0, failed_requests=20, success_ratio=0.0, status_codes={"404": 20}),
               "checks": [{"check": "endpoint probe: success ratio at least 1.0", "details": "0/20 answered 2xx",
                           "passed": False},
                          {"check": "Gateway default/inference-gateway is Programmed", "details": "programmed",
                           "passed": True}]}
FOUND = {"migration_needed": True, "pools": ["default/llama-preview"], "phases": ["not_started"], "finished_pools": []}


def report(cluster, outcome="succeeded", generated_at="2026-11-21T22:40:25Z", **fields):
    document = {"cluster": cluster, "generated_at": generated_at, "path_kind": "zero_downtime", "outcome": outcome,
                "error": "", "found": FOUND, "pools_migrated": ["default/llama-preview"],
                "changes": [{"phase": 1, "step": "v1 stack", "action": "v1 pool", "object": "default/llama-ga",
                             "changed": True},
                            {"phase": 2, "step": "50 %", "action": "weights", "object": "llm-route", "changed": False}],
                "gates": [PASSED_GATE], "failed_requests": 0, "downtime_seconds": 0.0,
                "backup_path": "/backups/%s/20261121T224025Z" % cluster}
    document.update(fields)
    return document


def test_every_cluster_migrated():
    summary = fleet.fleet_summary({"/r/a.json": report("a"), "/r/b.json": report("b", generated_at="2026-11-21T22:45:00Z")},
                                  ["a", "b"])
    assert summary["outcome"] == "succeeded"
    assert summary["started_at"] == "2026-11-21T22:40:25Z"
    assert summary["path_kinds"] == ["zero_downtime"]
    assert summary["summary"] == {"clusters": 2, "succeeded": 2, "failed": 0, "rolled_back": 0, "not_reached": 0,
                                  "pools_migrated": 2, "failed_requests": 0}
    assert summary["failed_clusters"] == summary["not_reached"] == []
    first = summary["clusters"][0]
    assert first["cluster"] == "a" and first["report"] == "/r/a.json"
    assert first["state_before"] == {"migration_needed": True, "finished_pools": [],
                                     "pools": [{"pool": "default/llama-preview", "phase": "not_started"}]}
    assert first["changed_count"] == 1 and len(first["changes"]) == 2
    assert first["gates"] == [{"name": PASSED_GATE["name"], "passed": True, "failed_checks": [],
                               "probe": {"sent": 20, "ok": 20, "failed_requests": 0, "success_ratio": 1.0,
                                         "p95_ms": 23.5, "failed_targets": []}}]
    assert first["backup_path"] == "/backups/a/20261121T224025Z"


def test_a_failed_canary_leaves_the_rest_not_reached_in_fleet_order():
    failed = report("canary", outcome="failed", error="Gate 'phase 1' failed", gates=[FAILED_GATE], pools_migrated=[],
                    failed_requests=20)
    summary = fleet.fleet_summary({"/r/canary.json": failed}, ["canary", "second", "third"])
    assert summary["outcome"] == "failed"
    assert summary["failed_clusters"] == ["canary"]
    assert summary["not_reached"] == ["second", "third"]
    assert [c["cluster"] for c in summary["clusters"]] == ["canary", "second", "third"]
    assert summary["clusters"][1] == {"cluster": "second", "outcome": "not_reached"}
    assert summary["summary"]["failed"] == 1 and summary["summary"]["not_reached"] == 2
    assert summary["summary"]["pools_migrated"] == 0 and summary["summary"]["failed_requests"] == 20
    gate = summary["clusters"][0]["gates"][0]
    assert gate["passed"] is False
    assert gate["failed_checks"] == ["endpoint probe: success ratio at least 1.0: 0/20 answered 2xx"]
    assert gate["probe"]["failed_requests"] == 20
    assert summary["clusters"][0]["error"] == "Gate 'phase 1' failed"


def test_a_rollback_fails_the_fleet_and_clusters_still_to_come_are_in_progress():
    assert fleet.fleet_summary({"/r/a.json": report("a", outcome="rolled_back")}, ["a", "b"])["outcome"] == "failed"
    in_progress = fleet.fleet_summary({"/r/a.json": report("a")}, ["a", "b"])
    assert in_progress["outcome"] == "in_progress" and in_progress["not_reached"] == ["b"]


def test_failed_requests_are_unknown_when_no_cluster_measured_them():
    summary = fleet.fleet_summary({"/r/a.json": report("a", failed_requests=None, gates=[{"name": "g", "passed": True}])},
                                  ["a"])
    assert summary["summary"]["failed_requests"] is None
    assert summary["clusters"][0]["gates"] == [{"name": "g", "passed": True, "failed_checks": []}]


def test_state_before_from_a_detect_result():
    detect = {"migration_needed": True, "alpha_pools": [{"namespace": "team", "name": "p", "phase": "shifting"}]}
    summary = fleet.fleet_summary({"/r/a.json": report("a", found=detect)}, ["a"])
    assert summary["clusters"][0]["state_before"]["pools"] == [{"pool": "team/p", "phase": "shifting"}]


def test_refuses_no_report_and_reports_of_other_clusters():
    with pytest.raises(MigrationError, match="at least one"):
        fleet.fleet_summary({}, ["a"])
    with pytest.raises(MigrationError, match="outside the fleet: z; the fleet is a, b"):
        fleet.fleet_summary({"/r/z.json": report("z")}, ["a", "b"])
