import copy
import json

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, route_writer, routes, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from memory_cluster import MemoryCluster

ALPHA, GA = api.ALPHA_GROUP, api.GA_GROUP


def ready_at(generation):
    return {"parents": [{"parentRef": {"name": "gw"}, "conditions": [
        {"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": generation},
        {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "observedGeneration": generation}]}]}


def gateway_catches_up(rtype, stored):
    if rtype == api.HTTP_ROUTE:
        stored["status"] = ready_at(stored["metadata"]["generation"])


def stored_route(cluster, name="llm-route", namespace="default"):
    return cluster.live(api.HTTP_ROUTE, name, namespace)


def make_route(name="llm-route", namespace="default", labels=None, second_rule=True):
    rules = [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
              "backendRefs": [{"group": ALPHA, "kind": "InferencePool", "name": "pool", "weight": 1}]}]
    if second_rule:
        rules.append({"matches": [{"headers": [{"name": "x-edit", "value": "0"}]}],
                      "backendRefs": [{"name": "svc", "port": 80}]})
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": name, "namespace": namespace, "labels": labels or {}, "generation": 1},
             "spec": {"parentRefs": [{"name": "gw"}], "rules": rules},
             "status": ready_at(1)}
    return route


def pool_object(group, name="pool", namespace="default"):
    return {"apiVersion": api.POOL_TYPES[group].api_version, "kind": "InferencePool",
            "metadata": {"name": name, "namespace": namespace}}


def cluster_with(*routes_, pools=(ALPHA, GA), **kwargs):
    cluster = MemoryCluster(*[(api.HTTP_ROUTE, route) for route in routes_], **kwargs)
    for group in pools:
        cluster.add(api.POOL_TYPES[group], pool_object(group))
    cluster.add(api.SERVICE, {"metadata": {"name": "svc", "namespace": "default"}})
    cluster.on_get = gateway_catches_up
    return cluster


def fifty_fifty(**options):
    return routes.parse_split([{"group": ALPHA, "kind": "InferencePool", "name": "pool", "weight": 50},
                               {"group": GA, "kind": "InferencePool", "name": "pool", "weight": 50}],
                              add_missing=True, **options)


def run(cluster, split, **kwargs):
    kwargs.setdefault("namespace", "default")
    kwargs.setdefault("wait_sleep", 0)
    kwargs.setdefault("wait_timeout", 5)
    return route_writer.split_traffic(cluster, [split], **kwargs)


def test_a_conflict_rereads_and_reapplies_only_our_change():
    cluster = cluster_with(make_route())
    edits = iter(["1", "2"])

    def concurrent_edit(fake, verb):
        value = next(edits, None)
        if value:
            fake.edit(api.HTTP_ROUTE, "llm-route", "default",
                      lambda r: r["spec"]["rules"][1]["matches"][0]["headers"][0].update(value=value))

    cluster.before_write = concurrent_edit
    result = run(cluster, fifty_fifty(), names=["llm-route"])

    stored = stored_route(cluster)
    assert len(cluster.requests("replace")) == 3, "two conflicts, then the write"
    assert stored["spec"]["rules"][1]["matches"][0]["headers"][0]["value"] == "2"
    assert [r["weight"] for r in stored["spec"]["rules"][0]["backendRefs"]] == [50, 50]
    assert result["changed"] is True
    assert result["routes"][0]["generation"] == stored["metadata"]["generation"] == 4
    assert result["routes"][0]["observed_generation"] == 4


def test_the_other_writer_may_make_our_change_meanwhile():
    cluster = cluster_with(make_route())
    wanted = fifty_fifty()

    def same_change(fake, verb):
        if not fake.requests("replace"):
            fake.edit(api.HTTP_ROUTE, "llm-route", "default",
                      lambda r: r.update(spec=routes.plan_route(copy.deepcopy(r), wanted).after["spec"]))

    cluster.before_write = same_change
    result = run(cluster, wanted, names=["llm-route"])
    assert len(cluster.requests("replace")) == 1 and result["changed"] is False


def test_endless_conflicts_give_up_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(waiting, "CONFLICT_BACKOFF", 0)
    cluster = cluster_with(make_route())
    cluster.before_write = lambda fake, verb: fake.edit(api.HTTP_ROUTE, "llm-route", "default",
                                                        lambda r: r["metadata"].setdefault("labels", {}))
    with pytest.raises(MigrationError, match="20 writes in a row lost a resourceVersion race"):
        run(cluster, fifty_fifty(), names=["llm-route"])
    assert len(cluster.requests("replace")) == waiting.CONFLICT_ATTEMPTS


def test_no_write_when_nothing_changes_but_the_state_is_still_verified():
    cluster = cluster_with(make_route())
    run(cluster, fifty_fifty(), names=["llm-route"])
    writes = len(cluster.requests("replace"))
    again = run(cluster, fifty_fifty(), names=["llm-route"], diff=True)
    assert len(cluster.requests("replace")) == writes
    assert again["changed"] is False and again["diff"] == []
    assert again["routes"][0]["rules"][0]["before"] == again["routes"][0]["rules"][0]["after"]

    cluster.on_get = None
    stored_route(cluster)["status"]["parents"][0]["conditions"][1].update(status="False", reason="BackendNotFound")
    with pytest.raises(MigrationError, match="ResolvedRefs is False \\(reason BackendNotFound"):
        run(cluster, fifty_fifty(), names=["llm-route"], wait_timeout=0)


def test_wait_times_out_showing_the_last_conditions():
    cluster = cluster_with(make_route())
    cluster.on_get = None  # the gateway never reports the new generation
    with pytest.raises(MigrationError) as failed:
        run(cluster, fifty_fifty(), names=["llm-route"], wait_timeout=0)
    message = str(failed.value)
    assert "HTTPRoute default/llm-route is not ready at generation 2 within wait_timeout" in message
    assert "Accepted is True (reason Accepted, observedGeneration 1, generation 2)" in message
    assert stored_route(cluster)["metadata"]["generation"] == 2, "the weights stay written"


def test_without_wait_the_status_is_reported_as_read():
    cluster = cluster_with(make_route())
    cluster.on_get = None
    result = run(cluster, fifty_fifty(), names=["llm-route"], wait=False)
    assert (result["routes"][0]["generation"], result["routes"][0]["observed_generation"]) == (2, 1)


def test_check_mode_persists_nothing_and_reports_the_change():
    cluster = cluster_with(make_route(), dry_run=True)
    cluster.on_get = None  # nothing to wait for: the dry run was never stored
    before = json.dumps(stored_route(cluster))
    result = run(cluster, fifty_fifty(), names=["llm-route"], diff=True)
    assert json.dumps(stored_route(cluster)) == before
    assert len(cluster.requests("replace")) == 1
    assert result["changed"] is True and result["routes"][0]["generation"] == 1
    assert result["routes"][0]["rules"][0]["after"] == {
        "%s/InferencePool/default/pool" % ALPHA: 50, "%s/InferencePool/default/pool" % GA: 50}
    assert result["diff"][0]["after"]["rules"][0]["backendRefs"][1]["group"] == GA


def test_every_route_is_validated_before_the_first_write():
    good, bad = make_route("good"), make_route("bad")
    bad["spec"]["rules"][0]["backendRefs"][0]["name"] = "other"
    bad["spec"]["rules"][1]["backendRefs"] = [{"group": ALPHA, "kind": "InferencePool", "name": "pool"}]
    bad["spec"]["rules"][1]["name"] = "second"
    cluster = cluster_with(good, bad)
    with pytest.raises(MigrationError) as refused:
        run(cluster, routes.parse_split([{"group": ALPHA, "kind": "InferencePool", "name": "pool", "weight": 5},
                                         {"group": GA, "kind": "InferencePool", "name": "pool", "weight": 5}]),
            names=["good", "bad"])
    assert cluster.requests("replace") == []
    assert refused.value.details["problems"] == [
        "HTTPRoute default/good rule 0 does not reference backend %s InferencePool default/pool; "
        "add it to the rule or set add_missing: true" % GA,
        "HTTPRoute default/bad rule 1 (second) does not reference backend %s InferencePool default/pool; "
        "add it to the rule or set add_missing: true" % GA,
    ]


def test_a_missing_route_is_refused():
    cluster = cluster_with(make_route())
    with pytest.raises(MigrationError, match="HTTPRoute default/nope does not exist; fix the routes option"):
        run(cluster, fifty_fifty(), names=["llm-route", "nope"])
    assert cluster.requests("replace") == []


def test_a_missing_pool_is_refused_naming_route_rule_and_backend():
    cluster = cluster_with(make_route(), pools=(ALPHA,))
    with pytest.raises(MigrationError) as refused:
        run(cluster, fifty_fifty(), names=["llm-route"])
    assert refused.value.details["problems"] == [
        "HTTPRoute default/llm-route rule 0: backend %s InferencePool default/pool does not exist (%s); create it "
        "first (for a pool, install its inferencepool chart), fix the backend, or set validate_backends: false"
        % (GA, api.GA_POOL.api_version)]
    assert cluster.requests("replace") == []
    assert run(cluster, fifty_fifty(), names=["llm-route"], validate_backends=False)["changed"]


def test_a_missing_service_and_an_unknown_pool_group_are_refused():
    route = make_route()
    route["spec"]["rules"][0]["backendRefs"].append({"name": "gone", "port": 80})
    cluster = cluster_with(route)
    split = routes.parse_split([{"group": ALPHA, "kind": "InferencePool", "name": "pool", "weight": 1},
                                {"group": "example.com", "kind": "InferencePool", "name": "pool", "weight": 1},
                                {"kind": "Service", "name": "gone", "weight": 1}], add_missing=True, rules=[0])
    with pytest.raises(MigrationError) as refused:
        run(cluster, split, names=["llm-route"])
    problems = refused.value.details["problems"]
    assert "backend example.com InferencePool default/pool is in no InferencePool group" in problems[0]
    assert "backend core Service default/gone does not exist (v1)" in problems[1]


def test_a_pool_dropped_at_zero_need_not_exist():
    route = make_route()
    route["spec"]["rules"][0]["backendRefs"].append({"group": GA, "kind": "InferencePool", "name": "pool"})
    cluster = cluster_with(route, pools=(GA,))
    split = routes.parse_split([{"group": ALPHA, "kind": "InferencePool", "name": "pool", "weight": 0},
                                {"group": GA, "kind": "InferencePool", "name": "pool", "weight": 100}],
                               remove_zero=True)
    run(cluster, split, names=["llm-route"])
    assert stored_route(cluster)["spec"]["rules"][0]["backendRefs"] == [
        {"group": GA, "kind": "InferencePool", "name": "pool", "weight": 100}]


def test_without_names_every_route_referencing_a_backend_in_any_namespace_is_selected():
    elsewhere = make_route("other", namespace="team-b")
    unrelated = make_route("unrelated")
    unrelated["spec"]["rules"] = unrelated["spec"]["rules"][1:]
    cluster = cluster_with(make_route(), elsewhere, unrelated)
    cluster.add(api.ALPHA_POOL, pool_object(ALPHA, namespace="team-b"))
    cluster.add(api.GA_POOL, pool_object(GA, namespace="team-b"))
    result = run(cluster, fifty_fifty(), namespace=None)
    assert [(r["namespace"], r["name"]) for r in result["routes"]] == [("default", "llm-route"), ("team-b", "other")]


def test_with_a_namespace_backends_default_to_it_even_for_routes_elsewhere():
    elsewhere = make_route("other", namespace="team-b")
    cluster = cluster_with(make_route(), elsewhere)
    result = run(cluster, fifty_fifty(default_namespace="default"), namespace="default")
    assert [(r["namespace"], r["name"]) for r in result["routes"]] == [("default", "llm-route")]


def test_a_selector_picks_routes_by_label_and_must_pick_one():
    cluster = cluster_with(make_route("a", labels={"app": "llm"}), make_route("b"))
    result = run(cluster, fifty_fifty(), selector="app=llm")
    assert [r["name"] for r in result["routes"]] == ["a"]
    with pytest.raises(MigrationError, match="no HTTPRoute selected: none exists with labels app=none in namespace"):
        run(cluster, fifty_fifty(), selector="app=none")


def test_no_route_referencing_the_backends_is_an_error():
    cluster = cluster_with(make_route())
    split = routes.parse_split([{"group": GA, "name": "absent", "weight": 1}])
    with pytest.raises(MigrationError, match="no HTTPRoute selected: none exists referencing "
                                             "%s InferencePool <route namespace>/absent" % GA):
        run(cluster, split, namespace=None)


def test_names_need_a_namespace():
    with pytest.raises(MigrationError, match="set namespace"):
        run(cluster_with(make_route()), fifty_fifty(), names=["llm-route"], namespace=None)


def test_diff_lists_each_changed_route():
    cluster = cluster_with(make_route("a"), make_route("b"))
    b = stored_route(cluster, "b")
    b["spec"]["rules"][0]["backendRefs"] = [
        {"group": ALPHA, "kind": "InferencePool", "name": "pool", "weight": 50},
        {"group": GA, "kind": "InferencePool", "name": "pool", "weight": 50}]
    result = run(cluster, fifty_fifty(), names=["a", "b"], diff=True)
    assert [d["before_header"] for d in result["diff"]] == ["HTTPRoute default/a"]
    assert [r["changed"] for r in result["routes"]] == [True, False]


def _pool_split(name, ga_weight):
    return routes.parse_split([{"group": ALPHA, "kind": "InferencePool", "name": name, "weight": 100 - ga_weight},
                               {"group": GA, "kind": "InferencePool", "name": name + "-ga", "weight": ga_weight}],
                              add_missing=True)


def _two_pool_route():
    """One route whose two rules reach two different preview pools, as pools of two teams share a route."""
    route = make_route(second_rule=False)
    route["spec"]["rules"].append({"matches": [{"headers": [{"name": "x-team", "value": "qwen"}]}],
                                   "backendRefs": [{"group": ALPHA, "kind": "InferencePool", "name": "qwen"}]})
    return route


def test_splits_that_share_a_route_each_write_it_on_the_copy_the_last_one_stored():
    cluster = cluster_with(_two_pool_route(), pools=())
    for group, name in ((ALPHA, "pool"), (GA, "pool-ga"), (ALPHA, "qwen"), (GA, "qwen-ga")):
        cluster.add(api.POOL_TYPES[group], pool_object(group, name))
    result = route_writer.split_traffic(cluster, [_pool_split("pool", 50), _pool_split("qwen", 50)],
                                        namespace="default", wait_sleep=0, wait_timeout=5)
    # Two replace requests: the second split did not lose a race to the first (a conflict would make a third).
    assert len(cluster.requests("replace")) == 2
    rules = stored_route(cluster)["spec"]["rules"]
    assert [[(ref["name"], ref["weight"]) for ref in rule["backendRefs"]] for rule in rules] == [
        [("pool", 50), ("pool-ga", 50)], [("qwen", 50), ("qwen-ga", 50)]]
    assert [route["generation"] for route in result["routes"]] == [2, 3] and result["changed"]


def test_a_split_that_cannot_be_applied_refuses_every_split_before_the_first_write():
    cluster = cluster_with(_two_pool_route(), pools=())
    for group, name in ((ALPHA, "pool"), (GA, "pool-ga"), (ALPHA, "qwen")):
        cluster.add(api.POOL_TYPES[group], pool_object(group, name))
    with pytest.raises(MigrationError) as refused:
        route_writer.split_traffic(cluster, [_pool_split("pool", 50), _pool_split("qwen", 50)], namespace="default")
    assert "InferencePool default/qwen-ga does not exist" in str(refused.value)
    assert cluster.requests("replace") == []
