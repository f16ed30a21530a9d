from ansible_collections.inference_gateway.migration.plugins.module_utils import report

PLAN = {"pools": ["default/a-preview"], "phases": ["not_started"], "finished_pools": ["old/c"]}
LEFTOVER = {"kind": "InferenceModel", "namespace": "team-b", "name": "stray", "why": "w", "fix": "f"}


def test_a_successful_migration_reports_the_pools_it_found_and_finished():
    document = report.cluster_report("prod", "20260301T123005Z", "zero_downtime", outcome=" succeeded\n",
                                     found=PLAN, failed_requests="0", downtime_seconds="0", backup_path=" /b ",
                                     leftovers=[LEFTOVER])
    assert document["generated_at"] == "2026-03-01T12:30:05Z"
    assert document["outcome"] == "succeeded"
    assert document["pools_migrated"] == ["default/a-preview", "old/c"]
    assert document["failed_requests"] == 0 and document["downtime_seconds"] == 0.0
    assert document["backup_path"] == "/b"
    assert document["leftovers"] == [LEFTOVER]


def test_pools_of_a_detect_result_count_and_duplicates_once():
    found = {"alpha_pools": [{"namespace": "team", "name": "b"}], "finished_pools": ["team/b"]}
    document = report.cluster_report("prod", "20260301T123005Z", "simple", found=found)
    assert document["pools_migrated"] == ["team/b"]


def test_a_failed_run_or_a_rollback_migrated_nothing_unless_told():
    assert report.cluster_report("prod", "20260301T123005Z", "simple", outcome="failed",
                                 found=PLAN)["pools_migrated"] == []
    assert report.cluster_report("prod", "20260301T123005Z", "rollback", found=PLAN)["pools_migrated"] == []
    assert report.cluster_report("prod", "20260301T123005Z", "simple", outcome="failed", found=PLAN,
                                 pools_migrated=["x/y"])["pools_migrated"] == ["x/y"]


def test_figures_not_measured_are_none():
    document = report.cluster_report("prod", "20260301T123005Z", "simple", failed_requests="", downtime_seconds="None",
                                     backup_path="")
    assert document["failed_requests"] is None and document["downtime_seconds"] is None
    assert document["downtime_by_pool"] == {}
    assert document["backup_path"] is None and document["leftovers"] == [] and document["last_applied"] == []


def test_objects_kubectl_applied_with_a_preview_pool_are_reported_as_given():
    applied = {"kind": "HTTPRoute", "namespace": "default", "name": "llm-route", "pools": ["default/a"],
               "names": ["default/a"], "fix": "change it"}
    document = report.cluster_report("prod", "20260301T123005Z", "simple", last_applied=[applied])
    assert document["last_applied"] == [applied]


def test_the_fleet_reads_back_what_was_written():
    written = report.cluster_report("prod", "20260301T123005Z", "zero_downtime", found=PLAN, leftovers=[LEFTOVER],
                                    changes=[{"changed": True}, {"changed": False}], failed_requests=3)
    entry = report.cluster_entry("/r/prod.json", written)
    assert entry["cluster"] == "prod" and entry["report"] == "/r/prod.json"
    assert entry["state_before"]["pools"] == [{"pool": "default/a-preview", "phase": "not_started"}]
    assert entry["pools_migrated"] == written["pools_migrated"]
    assert entry["changed_count"] == 1 and entry["failed_requests"] == 3
    assert entry["leftovers"] == [LEFTOVER]


def test_a_traffic_split_loop_is_logged_with_each_route_once():
    first = {"routes": [{"namespace": "a", "name": "llm-route"}, {"namespace": "a", "name": "other"}]}
    second = {"routes": [{"namespace": "a", "name": "llm-route"}, {"namespace": "b", "name": "other"}]}
    split = {"changed": True, "results": [first, second]}
    assert report.split_routes(split) == [{"namespace": "a", "name": "llm-route", "rules": []},
                                          {"namespace": "a", "name": "other", "rules": []},
                                          {"namespace": "b", "name": "other", "rules": []}]
    assert report.route_change(split, 2, "50 %", "weights preview 50 / v1 50") == {
        "phase": 2, "step": "50 %", "action": "weights preview 50 / v1 50", "object": "llm-route, other, other",
        "changed": True}


def written(index, **weights):
    return {"index": index, "name": None, "before": {}, "after": weights}


def test_the_weights_a_loop_left_in_each_rule_are_those_of_its_last_write():
    # Two pools in rule 0 of one route: the second write re-read the route, so its rule 0 holds both changes.
    first = {"routes": [{"namespace": "a", "name": "llm-route", "rules": [written(0, p1=50, g1=50, p2=1)]}]}
    second = {"routes": [{"namespace": "a", "name": "llm-route",
                          "rules": [written(0, p1=50, g1=50, p2=50, g2=50), written(2, p2=50, g2=50)]}]}
    split = {"changed": True, "results": [first, second]}
    expected = [{"index": 0, "weights": {"p1": 50, "g1": 50, "p2": 50, "g2": 50}},
                {"index": 2, "weights": {"p2": 50, "g2": 50}}]
    assert report.split_routes(split) == [{"namespace": "a", "name": "llm-route", "rules": expected}]
    gate_routes = [{"namespace": "a", "name": "llm-route"}, {"namespace": "b", "name": "untouched"}]
    assert report.with_written_weights(gate_routes, split) == [
        {"namespace": "a", "name": "llm-route", "rules": expected}, {"namespace": "b", "name": "untouched"}]
    assert report.with_written_weights(gate_routes, {}) == gate_routes


def test_a_skipped_or_single_traffic_split_is_logged_too():
    assert report.route_change({"skipped": True, "changed": False}, 3, "finish", "x")["object"] == ""
    single = report.route_change({"changed": False, "routes": [{"namespace": "a", "name": "llm-route"}]},
                                 "switch", "routes", "x")
    assert (single["object"], single["changed"]) == ("llm-route", False)


def test_a_gate_with_a_probe_per_pool_names_the_pools_that_failed():
    targets = [{"name": "pool default/a", "passed": True}, {"name": "pool default/b", "passed": False}]
    gate = {"name": "phase 2: 50 % on v1", "passed": False, "checks": [],
            "probe": {"sent": 40, "ok": 30, "failed_requests": 10, "success_ratio": 0.75, "latency_ms": {"p95": 9.0},
                      "targets": targets}}
    assert report.gate_figures(gate)["probe"]["failed_targets"] == ["pool default/b"]


def test_grant_changes_name_each_grant_and_what_it_now_allows_or_no_longer_allows():
    result = {"grants": [
        {"namespace": "platform", "name": "chat-routes", "removed": [],
         "added": [{"group": "inference.networking.k8s.io", "kind": "InferencePool"},
                   {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "mistral-ga"}]},
        {"namespace": "platform", "name": "search-routes", "added": [],
         "removed": [{"group": "inference.networking.x-k8s.io", "kind": "InferencePool", "name": "mistral"}]}]}
    assert report.grant_changes(result, 1, "v1 stack") == [
        {"phase": 1, "step": "v1 stack", "object": "ReferenceGrant platform/chat-routes", "changed": True,
         "action": "ReferenceGrant now allows every v1 InferencePool, mistral-ga"},
        {"phase": 1, "step": "v1 stack", "object": "ReferenceGrant platform/search-routes", "changed": True,
         "action": "ReferenceGrant no longer allows mistral"}]
    assert report.grant_changes({"skipped": True}, 3, "cleanup") == []


def test_downtime_is_reported_per_pool_as_measured():
    document = report.cluster_report("prod", "20260301T123005Z", "simple", downtime_seconds="7.5",
                                     downtime_by_pool={"pool team/a (HTTPRoute team/r rule 0)": "6.1", "pool b": 7.5})
    assert document["downtime_by_pool"] == {"pool team/a (HTTPRoute team/r rule 0)": 6.1, "pool b": 7.5}
