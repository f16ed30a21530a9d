import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, plan
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

POOL_A = {"namespace": "default", "name": "a-preview", "phase": "not_started", "weights": {"alpha": 1, "ga": 0},
          "extension_ref": {"name": "a-preview-epp"},
          "epp": {"deployment": "a-preview-epp", "service_found": True},
          "models": [{"namespace": "default", "name": "food-review", "model_name": "food-review", "rewrites": False,
                      "target_models": [{"name": "food-review", "weight": 100}]},
                     {"namespace": "default", "name": "chat", "model_name": "chat", "rewrites": True,
                      "target_models": [{"name": "chat-v1", "weight": 90}, {"name": "chat-v2", "weight": 10}]}]}
POOL_B = {"namespace": "team", "name": "b", "phase": "shifting", "weights": {"alpha": 50, "ga": 50}, "models": []}
DETECT = {"alpha_pools": [POOL_A, POOL_B],
          "v1_pools": [{"namespace": "old", "name": "c-ga", "phase": "alpha_removed", "migrated_from": "old/c"},
                       {"namespace": "default", "name": "x", "phase": None}]}


def test_select_all_pools_or_the_named_ones():
    assert plan.select_pools(DETECT) == [POOL_A, POOL_B]
    assert plan.select_pools(DETECT, ["team/b"]) == [POOL_B]


def test_selecting_an_unknown_pool_names_it_and_what_exists():
    with pytest.raises(MigrationError, match=r"team/zzz.*default/a-preview, team/b"):
        plan.select_pools(DETECT, ["team/zzz"])


POOL_GONE = {"namespace": "team", "name": "gone", "phase": "not_started", "backup": "/backups/20260301T123005Z",
             "models": []}


def _orphan_ref(name, weight, namespace="team", group=api.ALPHA_GROUP):
    return {"namespace": namespace, "name": "route-" + name, "rule": 0, "backend": {
        "group": group, "kind": "InferencePool", "namespace": namespace, "name": name, "weight": weight}}


def test_preview_pools_rebuilt_from_a_backup_are_selected_like_the_others():
    detect = dict(DETECT, removed_alpha_pools=[POOL_GONE])
    assert plan.select_pools(detect) == [POOL_A, POOL_B, POOL_GONE]
    assert plan.select_pools(detect, ["team/gone"]) == [POOL_GONE]


def test_routes_to_missing_alpha_are_the_traffic_carrying_refs_no_backup_brought_back():
    detect = dict(DETECT, removed_alpha_pools=[POOL_GONE], orphans={"routes": [
        _orphan_ref("gone", 1), _orphan_ref("lost", 50), _orphan_ref("drained", 0),
        _orphan_ref("v1-missing", 10, group=api.GA_GROUP)]})
    assert plan.routes_to_missing_alpha(detect) == [
        "HTTPRoute team/route-lost rule 0 -> InferencePool %s team/lost" % api.ALPHA_GROUP]
    assert plan.routes_to_missing_alpha(detect, ["default/a-preview"]) == []
    assert plan.routes_to_missing_alpha({"alpha_pools": []}) == []


def test_finished_pools_are_v1_pools_whose_preview_is_gone():
    assert [p["name"] for p in plan.finished_pools(DETECT)] == ["c-ga"]
    assert plan.finished_pools(DETECT, ["default/a-preview"]) == []


@pytest.mark.parametrize("weights", [[], [50], [50, 50, 100], [100, 50], [0, 100], [50, 101], [True, 100], ["50", 100]])
def test_bad_step_weights_are_refused(weights):
    with pytest.raises(MigrationError):
        plan.validate_step_weights(weights)


def test_pending_steps_skip_what_every_pool_already_reached():
    assert plan.pending_steps([50, 100], [POOL_A]) == [50, 100]
    assert plan.pending_steps([10, 50, 100], [POOL_B]) == [100]
    # The least advanced pool decides, so no pool skips a gate.
    assert plan.pending_steps([10, 50, 100], [POOL_A, POOL_B]) == [10, 50, 100]


def test_ga_percent_reads_detect_weights_and_phases():
    assert plan.ga_percent(POOL_B) == 50
    assert plan.ga_percent({"weights": {"alpha": 0, "ga": 0}, "phase": "shifted"}) == 100
    assert plan.ga_percent({"weights": {}, "phase": "side_by_side"}) == 0


def test_split_backends_use_both_groups_and_sum_to_100():
    backends = plan.split_backends({"alpha": "default/a-preview", "v1": "default/a-ga"}, 30)
    assert [(b["group"], b["name"], b["weight"]) for b in backends] == [
        (api.ALPHA_GROUP, "a-preview", 70), (api.GA_GROUP, "a-ga", 30)]
    assert all(b["kind"] == "InferencePool" and b["namespace"] == "default" for b in backends)


def test_pair_splits_give_every_pair_its_own_split_at_the_same_step():
    pairs = [{"alpha": "team-chat/chat", "v1": "team-chat/chat-ga"},
             {"alpha": "platform/mistral", "v1": "platform/mistral-ga"}]
    splits = plan.pair_splits(pairs, 25)
    assert [[(b["namespace"], b["name"], b["weight"]) for b in split["backends"]] for split in splits] == [
        [("team-chat", "chat", 75), ("team-chat", "chat-ga", 25)],
        [("platform", "mistral", 75), ("platform", "mistral-ga", 25)]]
    assert plan.pair_splits([], 25) == []


def test_unqualified_pair_names_are_refused():
    with pytest.raises(MigrationError, match="namespace/name"):
        plan.split_backends({"alpha": "a-preview", "v1": "default/a-ga"}, 50)


def test_rollback_returns_to_the_last_passed_step_or_to_preview():
    assert plan.rollback_weight([10, 50]) == 50
    assert plan.rollback_weight([]) == 0


def test_models_needing_rewrite_are_listed_with_their_targets():
    assert plan.models_needing_rewrite([POOL_A, POOL_B]) == ["default/chat (model chat -> chat-v1:90, chat-v2:10)"]


def test_alpha_stack_objects_are_what_the_seed_removes_by_hand():
    objects = plan.alpha_stack_objects(POOL_A)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("InferenceModel", "food-review"), ("InferenceModel", "chat"), ("Deployment", "a-preview-epp"),
        ("Service", "a-preview-epp"), ("InferencePool", "a-preview")]
    assert objects[-1]["apiVersion"] == api.ALPHA_POOL.api_version


def test_leftover_models_are_those_still_pointing_at_the_preview_pool_of_a_finished_v1_pool():
    detect = {"inference_models": [
        {"namespace": "old", "name": "food-review", "pool_ref": {"group": api.ALPHA_GROUP, "name": "c"}},
        {"namespace": "other", "name": "same-pool-name", "pool_ref": {"group": api.ALPHA_GROUP, "name": "c"}},
        {"namespace": "old", "name": "live-pool", "pool_ref": {"group": api.ALPHA_GROUP, "name": "d"}},
        {"namespace": "old", "name": "v1-group", "pool_ref": {"group": api.GA_GROUP, "name": "c"}}]}
    leftovers = plan.leftover_models(detect, plan.finished_pools(DETECT))
    assert leftovers == [{"apiVersion": api.INFERENCE_MODEL.api_version, "kind": api.INFERENCE_MODEL.kind,
                          "metadata": {"name": "food-review", "namespace": "old"}}]
    assert plan.leftover_models(detect, []) == []
    assert plan.leftover_models({"inference_models": []}, plan.finished_pools(DETECT)) == []


def test_namespaces_are_unique_and_sorted():
    assert plan.pool_namespaces([POOL_B, POOL_A, POOL_B]) == ["default", "team"]


def test_resource_type_gives_roles_api_version_and_kind():
    assert plan.resource_type("gateway") == {"api_version": "gateway.networking.k8s.io/v1", "kind": "Gateway"}
    assert plan.resource_type("deployment")["api_version"] == "apps/v1"
    with pytest.raises(MigrationError, match="unknown resource type"):
        plan.resource_type("gatway")


def test_model_rewrite_is_available_from_the_crd_or_the_target_release():
    with_crd = {"crds": {api.INFERENCE_MODEL_REWRITE.crd_name: {"present": True}}}
    assert plan.model_rewrite_available(with_crd, "v1.0.0")
    assert plan.model_rewrite_available({"crds": {}}, "v1.3.0")
    assert not plan.model_rewrite_available({"crds": {}}, "v1.2.1")
    with pytest.raises(MigrationError):
        plan.model_rewrite_available({}, "latest")


def test_gate_targets_list_each_route_once_and_the_v1_pools_with_their_epps():
    route = {"namespace": "default", "name": "llm-route", "rules": [],
             "parents": [{"namespace": "gw", "name": "external", "section_name": None, "port": None}]}
    pools = [{"namespace": "default", "name": "a", "routes": [route]},
             {"namespace": "default", "name": "b", "routes": [route, {"namespace": "default", "name": "other"}]}]
    pairs = [{"alpha": "default/a", "v1": "default/a-ga", "epp_deployment": "a-ga-epp"},
             {"alpha": "default/b", "v1": "default/b-ga"}]
    targets = plan.gate_targets(pools, pairs)
    assert targets["routes"] == [{"namespace": "default", "name": "llm-route"}, {"namespace": "default", "name": "other"}]
    assert targets["pools"] == [{"group": api.GA_GROUP, "namespace": "default", "name": "a-ga"},
                                {"group": api.GA_GROUP, "namespace": "default", "name": "b-ga"}]
    assert targets["epp_deployments"] == [{"namespace": "default", "name": "a-ga-epp"}]
    assert targets["gateways"] == [{"namespace": "gw", "name": "external"}]
    assert plan.gate_targets([]) == {"gateways": [], "routes": [], "pools": [], "epp_deployments": [], "probes": [],
                                     "unprobed": []}


def test_finished_pairs_come_from_v1_pools_whose_preview_is_gone():
    finished = [{"namespace": "old", "name": "c-ga", "migrated_from": "old/c", "epp": {"deployment": "c-ga-epp"}}]
    assert plan.finished_pairs(finished) == [{"alpha": "old/c", "v1": "old/c-ga", "epp_deployment": "c-ga-epp"}]


def test_remaining_alpha_names_pools_and_models_of_the_migrated_pools_only():
    after = {"alpha_pools": [POOL_B, {"namespace": "x", "name": "untouched"}],
             "inference_models": [
                 {"namespace": "default", "name": "food-review", "pool_ref": {"group": api.ALPHA_GROUP, "name": "a-preview"}},
                 {"namespace": "default", "name": "elsewhere", "pool_ref": {"group": api.ALPHA_GROUP, "name": "other"}}]}
    left = plan.remaining_alpha(after, [POOL_A, POOL_B])
    assert left == ["InferencePool %s team/b" % api.ALPHA_GROUP, "InferenceModel default/food-review"]
    assert plan.remaining_alpha({"alpha_pools": [], "inference_models": []}, [POOL_A]) == []


def test_a_preview_object_created_again_after_its_removal_says_when_and_by_whom():
    read_before = dict(POOL_B, uid="pool-uid-1", models=[
        {"namespace": "team", "name": "chat", "uid": "model-uid-1"}])
    healer = "field manager argocd-controller (Update at 2026-12-04T10:00:07Z)"
    after = {"alpha_pools": [dict(POOL_B, uid="pool-uid-2", created="2026-12-04T10:00:07Z", last_writer=healer)],
             "inference_models": [
                 {"namespace": "team", "name": "chat", "uid": "model-uid-1",
                  "pool_ref": {"group": api.ALPHA_GROUP, "name": "b"}},
                 {"namespace": "team", "name": "new", "uid": "model-uid-9", "created": "2026-12-04T10:00:08Z",
                  "pool_ref": {"group": api.ALPHA_GROUP, "name": "b"}}]}
    assert plan.remaining_alpha(after, [read_before]) == [
        "InferencePool %s team/b (created again at 2026-12-04T10:00:07Z after this run deleted it, last written by "
        "%s)" % (api.ALPHA_GROUP, healer),
        "InferenceModel team/chat",  # the same object: its deletion has not gone through
        "InferenceModel team/new (created at 2026-12-04T10:00:08Z while this run went on, last written by an "
        "unrecorded writer)"]


def test_a_model_named_like_its_pool_is_judged_by_its_own_uid():
    read_before = dict(POOL_B, uid="pool-uid", models=[{"namespace": "team", "name": "b", "uid": "model-uid"}])
    after = {"alpha_pools": [dict(POOL_B, uid="pool-uid")],
             "inference_models": [{"namespace": "team", "name": "b", "uid": "model-uid",
                                   "pool_ref": {"group": api.ALPHA_GROUP, "name": "b"}}]}
    assert plan.remaining_alpha(after, [read_before]) == ["InferencePool %s team/b" % api.ALPHA_GROUP,
                                                          "InferenceModel team/b"]


def test_cluster_gate_targets_cover_both_groups():
    detect = {"alpha_pools": [{"namespace": "default", "name": "a", "epp": {"deployment": "a-epp"},
                               "routes": [{"namespace": "default", "name": "llm-route"}]}],
              "v1_pools": [{"namespace": "default", "name": "a-ga", "epp": {"deployment": None},
                            "routes": [{"namespace": "default", "name": "llm-route"}]}]}
    targets = plan.cluster_gate_targets(detect)
    assert targets["routes"] == [{"namespace": "default", "name": "llm-route"}]
    assert targets["pools"] == [{"group": api.GA_GROUP, "namespace": "default", "name": "a-ga"}]
    assert targets["epp_deployments"] == [{"namespace": "default", "name": "a-epp"}]


def _managed(kind, name, pools, *manager_names):
    return {"kind": kind, "namespace": "default", "name": name, "pools": list(pools),
            "managers": [{"name": m, "by": "%s thing" % m, "evidence": "%s evidence" % m, "fix": "%s fix" % m}
                         for m in manager_names]}


OWNED = {"managed_objects": [_managed("HTTPRoute", "llm-route", ["default/a", "default/b"], "argocd", "flux"),
                             _managed("InferencePool", "b", ["default/b"], "owner")],
         "last_applied": [{"kind": "HTTPRoute", "namespace": "default", "name": "llm-route", "pools": ["default/a"],
                           "names": ["default/a"], "fix": "change it"}]}


def test_every_manager_of_a_touched_object_is_refused_until_acknowledged():
    [line] = plan.unacknowledged_managers(OWNED, [{"namespace": "default", "name": "a"}])
    assert line == ("HTTPRoute default/llm-route is managed by argocd thing [argocd] (argocd evidence): argocd fix; "
                    "and by flux thing [flux] (flux evidence): flux fix")
    assert len(plan.unacknowledged_managers(OWNED, [{"namespace": "default", "name": "b"}], False)) == 2


@pytest.mark.parametrize("accept, left", [
    (True, []), ("true", []), (["argocd", "flux", "owner"], []),
    (["argocd"], ["flux", "owner"]), ("argocd,owner", ["flux"]), ([], ["argocd", "flux", "owner"]),
])
def test_acknowledged_managers_are_let_through_and_only_they(accept, left):
    found = plan.unacknowledged_managers(OWNED, [{"namespace": "default", "name": "b"}], accept)
    assert sorted(m for m in ("argocd", "flux", "owner") if any("[%s]" % m in line for line in found)) == left


def test_objects_of_pools_not_migrated_are_not_refused():
    assert plan.unacknowledged_managers(OWNED, [{"namespace": "default", "name": "c"}]) == []
    assert plan.unacknowledged_managers({}, [{"namespace": "default", "name": "a"}]) == []


def test_last_applied_objects_name_the_object_the_preview_pool_and_the_fix():
    assert plan.last_applied_objects(OWNED, [{"namespace": "default", "name": "a"}]) == [
        "HTTPRoute default/llm-route was last written with kubectl apply naming preview pool default/a: change it"]
    assert plan.last_applied_objects(OWNED, [{"namespace": "default", "name": "b"}]) == []


def routed(pool, *rules, hostnames=(), parents=None, route="llm-route"):
    """A detect pool entry reached by HTTPRoute default/<route> through the given rules (lists of matches)."""
    parents = [{"namespace": "gateways", "name": "external", "section_name": None, "port": None}] \
        if parents is None else parents
    return dict(pool, routes=[{"namespace": "default", "name": route, "hostnames": list(hostnames),
                               "parents": parents,
                               "rules": [{"index": index, "matches": matches} for index, matches in rules]}])


def test_a_pool_is_probed_through_its_rule_gateway_host_and_headers_with_a_model_it_serves():
    pool = routed(POOL_A, (1, [{"path": {"type": "PathPrefix", "value": "/"},
                                "headers": [{"name": "x-team", "value": "qwen"}]}]),
                  hostnames=["*.llm.example.com"],
                  parents=[{"namespace": "gateways", "name": "internal", "section_name": "http", "port": None}])
    assert plan.probe_target(pool) == {
        "name": "pool default/a-preview (HTTPRoute default/llm-route rule 1)", "pool": "default/a-preview",
        "route": "default/llm-route", "gateway_name": "internal", "gateway_namespace": "gateways", "listener": "http",
        "path": "/v1/completions", "headers": {"x-team": "qwen", "Host": "probe.llm.example.com"},
        "model": "food-review"}  # chat needs the preview rewrite


@pytest.mark.parametrize("match, path", [
    ({}, "/v1/completions"),
    ({"path": {"type": "PathPrefix", "value": "/v1"}}, "/v1/completions"),
    ({"path": {"type": "PathPrefix", "value": "/team-a/"}}, "/team-a/v1/completions"),
    ({"path": {"type": "Exact", "value": "/llama/v1/completions"}}, "/llama/v1/completions"),
    ({"queryParams": [{"name": "tier", "value": "gold"}]}, "/v1/completions?tier=gold"),
])
def test_the_probe_path_is_one_the_match_admits(match, path):
    assert plan.probe_target(routed(POOL_B, (0, [match])))["path"] == path


def test_a_match_a_probe_cannot_follow_is_passed_over_for_the_next_one_or_the_pool_is_unprobed():
    regex = {"path": {"type": "RegularExpression", "value": "/v[0-9]+/.*"}}
    get_only = {"method": "GET"}
    header_regex = {"headers": [{"type": "RegularExpression", "name": "x-team", "value": "q.*"}]}
    later = plan.probe_target(routed(POOL_B, (0, [regex, get_only]), (2, [header_regex, {"path": {
        "type": "Exact", "value": "/qwen"}}])))
    assert (later["name"], later["path"]) == ("pool team/b (HTTPRoute default/llm-route rule 2)", "/qwen")
    unprobed = plan.probe_target(routed(POOL_B, (0, [regex])))
    assert "route" not in unprobed and "give its target in the probe targets" in unprobed["unprobed"]
    assert "unprobed" in plan.probe_target(routed(POOL_B, (0, [{}]), parents=[]))
    assert plan.probe_target(POOL_B)["model"] is None  # no InferenceModel: the probe's default model


def test_overrides_replace_fields_of_a_pools_target_and_add_targets_of_their_own():
    pools = [routed(POOL_A, (0, [{}])), routed(POOL_B, (0, [{"path": {"type": "RegularExpression", "value": "x"}}]))]
    b_override = {"pool": "team/b", "path": "/b/v1/completions", "gateway_name": "internal",
                  "gateway_namespace": "team"}
    health = {"name": "health", "url": "http://203.0.113.9/v1/completions"}
    targets, unprobed = plan.probe_targets(pools, [b_override, health])
    assert unprobed == []
    assert targets[1:] == [{"name": "pool team/b", "gateway_name": "internal", "gateway_namespace": "team",
                            "path": "/b/v1/completions", "model": None}, health]
    assert targets[0] == {"name": "pool default/a-preview (HTTPRoute default/llm-route rule 0)",
                          "gateway_name": "external", "gateway_namespace": "gateways", "listener": None,
                          "path": "/v1/completions", "headers": {}, "model": "food-review"}
    targets, unprobed = plan.probe_targets(pools)
    assert len(targets) == 1 and unprobed == ["pool team/b: " + plan.probe_target(pools[1])["unprobed"]]


def test_pool_gateways_are_the_parents_of_the_pools_routes_once_each_then_the_one_named():
    external = {"namespace": "platform", "name": "external", "section_name": None, "port": None}
    internal = {"namespace": "platform", "name": "internal", "section_name": None, "port": None}
    chat = {"namespace": "team", "name": "chat", "parents": [dict(external, section_name="http")]}
    shared = {"namespace": "platform", "name": "shared", "parents": [external, internal]}
    pools = [{"namespace": "team", "name": "a", "routes": [chat]},
             {"namespace": "platform", "name": "b", "routes": [shared]}, {"name": "c"}]
    derived = [{"namespace": "platform", "name": "external"}, {"namespace": "platform", "name": "internal"}]
    assert plan.pool_gateways(pools) == derived
    assert plan.pool_gateways(pools, "external", "platform") == derived
    assert plan.pool_gateways(pools, "inference-gateway") == derived + [
        {"namespace": "default", "name": "inference-gateway"}]
    assert plan.pool_gateways([], "") == []


def test_a_finished_v1_pool_is_probed_with_the_model_name_kept_on_its_objectives():
    route = {"namespace": "team", "name": "chat", "hostnames": [], "rules": [{"index": 1, "matches": [
        {"path": {"type": "PathPrefix", "value": "/"}, "headers": [{"name": "x-team", "value": "qwen"}]}]}],
        "parents": [{"namespace": "gw", "name": "external", "section_name": None, "port": None}]}
    v1_pool = {"namespace": "team", "name": "qwen-ga", "routes": [route], "models": [
        {"namespace": "team", "name": "a-objective-made-by-hand", "model_name": None},
        {"namespace": "team", "name": "qwen", "model_name": "Qwen/Qwen2.5-1.5B-Instruct"}]}
    assert plan.probe_target(v1_pool)["model"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert plan.probe_target(dict(v1_pool, models=v1_pool["models"][:1]))["model"] is None
