import copy
import json

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, routes
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

ALPHA, GA = api.ALPHA_GROUP, api.GA_GROUP
ALPHA_ID = "%s/InferencePool/default/pool" % ALPHA
GA_ID = "%s/InferencePool/default/pool" % GA
SVC_ID = "/Service/default/svc"


def live_route():
    """A route as the API server returns it, with everything traffic_split must not touch."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": "llm-route",
            "namespace": "default",
            "resourceVersion": "41",
            "generation": 3,
            "labels": {"app": "llm"},
            "annotations": {"owner": "team-a", "kubectl.kubernetes.io/last-applied-configuration": "{\"x\": 1}"},
        },
        "spec": {
            "parentRefs": [{"group": api.GATEWAY_GROUP, "kind": "Gateway", "name": "inference-gateway"}],
            "hostnames": ["llm.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    # Written the way users write it: weight and kind order vary, unknown fields exist.
                    "backendRefs": [{
                        "name": "pool",
                        "kind": "InferencePool",
                        "group": ALPHA,
                        "x-vendor-hint": {"keep": [1, 2, 3]},
                        "filters": [{"type": "RequestHeaderModifier",
                                     "requestHeaderModifier": {"set": [{"name": "x-pool", "value": "a"}]}}],
                    }],
                    "timeouts": {"request": "300s", "backendRequest": "290s"},
                    "x-unknown-rule-field": "kept",
                },
                {
                    "name": "canary",
                    "matches": [{"headers": [{"type": "Exact", "name": "x-canary", "value": "1"}],
                                 "path": {"type": "Exact", "value": "/v1/completions"}}],
                    "filters": [{"type": "RequestHeaderModifier",
                                 "requestHeaderModifier": {"add": [{"name": "x-rule", "value": "canary"}]}}],
                    "backendRefs": [
                        {"group": GA, "kind": "InferencePool", "name": "pool", "weight": 10},
                        {"name": "svc", "port": 8000, "weight": 5},
                        {"weight": 90, "group": ALPHA, "kind": "InferencePool", "name": "pool"},
                    ],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/health"}}],
                    "backendRefs": [{"name": "svc", "port": 8000}],
                },
            ],
        },
        "status": {"parents": [{
            "parentRef": {"name": "inference-gateway"},
            "controllerName": "networking.gke.io/gateway",
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": 3},
                {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "observedGeneration": 2},
            ],
        }]},
    }


def split(*backends, **options):
    return routes.parse_split([dict(b) for b in backends], **options)


def pool(group, weight, **extra):
    return dict(group=group, kind="InferencePool", name="pool", weight=weight, **extra)


def dump(obj):
    return json.dumps(obj)  # no sort_keys: key order is part of what must survive


def problems_of(plan):
    assert plan.problems, "expected the plan to be refused"
    return "\n".join(plan.problems)


def test_only_the_intended_weights_change_byte_for_byte():
    route = live_route()
    read = dump(route)
    plan = routes.plan_route(route, split(pool(ALPHA, 50), pool(GA, 50), add_missing=True))

    expected = live_route()
    first, canary = expected["spec"]["rules"][0], expected["spec"]["rules"][1]
    first["backendRefs"][0]["weight"] = 50
    first["backendRefs"].append({"group": GA, "kind": "InferencePool", "name": "pool", "weight": 50,
                                 "filters": copy.deepcopy(first["backendRefs"][0]["filters"])})
    canary["backendRefs"][0]["weight"] = 50
    canary["backendRefs"][2]["weight"] = 50
    assert plan.changed and not plan.problems
    assert dump(plan.after) == dump(expected)
    assert dump(route) == read, "the route as read must not be modified"
    assert plan.before is route


def test_second_call_is_a_no_op():
    wanted = split(pool(ALPHA, 50), pool(GA, 50), add_missing=True)
    first = routes.plan_route(live_route(), wanted)
    second = routes.plan_route(first.after, wanted)
    assert not second.changed
    assert dump(second.after) == dump(first.after)
    assert [r["before"] for r in second.rules] == [r["after"] for r in first.rules]


def test_defaults_spelled_differently_are_no_change():
    route = live_route()
    # What the route omits (group, kind, weight) equals what the split spells out, and vice versa.
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1
    plan = routes.plan_route(route, split(
        pool(ALPHA, 1), dict(group="", kind="Service", name="svc", weight=1), rules=[0, 2]))
    assert not plan.changed, plan.after
    omitted = live_route()
    plan = routes.plan_route(omitted, split(pool(ALPHA, 1), rules=[0]))
    assert not plan.changed
    assert "weight" not in plan.after["spec"]["rules"][0]["backendRefs"][0]


def test_server_defaulting_after_a_write_keeps_the_next_run_a_no_op():
    wanted = split(pool(ALPHA, 1), pool(GA, 3), add_missing=True, rules=[0])
    written = routes.plan_route(live_route(), wanted).after
    defaulted = copy.deepcopy(written)
    for ref in defaulted["spec"]["rules"][0]["backendRefs"]:
        ref.setdefault("weight", 1)
        ref.setdefault("group", "")
        ref.setdefault("kind", "Service")
    assert not routes.plan_route(defaulted, wanted).changed


def test_pools_of_the_same_name_in_the_two_groups_are_weighted_separately():
    plan = routes.plan_route(live_route(), split(pool(ALPHA, 7), pool(GA, 3), rules=["canary"]))
    refs_after = plan.after["spec"]["rules"][1]["backendRefs"]
    assert [r["weight"] for r in refs_after] == [3, 5, 7]
    assert plan.rules == [{"index": 1, "name": "canary",
                           "before": {GA_ID: 10, SVC_ID: 5, ALPHA_ID: 90},
                           "after": {GA_ID: 3, SVC_ID: 5, ALPHA_ID: 7}}]


def test_default_scope_is_every_rule_that_references_a_listed_backend():
    plan = routes.plan_route(live_route(), split(pool(ALPHA, 50), pool(GA, 50), add_missing=True))
    assert [(r["index"], r["name"]) for r in plan.rules] == [(0, None), (1, "canary")]
    assert plan.rules[0]["before"] == {ALPHA_ID: 1}
    assert plan.rules[0]["after"] == {ALPHA_ID: 50, GA_ID: 50}


def test_rules_by_name_and_index_limit_the_change():
    plan = routes.plan_route(live_route(), split(pool(ALPHA, 2), pool(GA, 1), rules=["canary"]))
    assert dump(plan.after["spec"]["rules"][0]) == dump(live_route()["spec"]["rules"][0])
    by_index = routes.plan_route(live_route(), split(pool(ALPHA, 2), pool(GA, 1), rules=[1]))
    assert dump(by_index.after) == dump(plan.after)


def test_add_missing_puts_new_refs_beside_the_first_listed_one_with_its_filters():
    route = live_route()
    route["spec"]["rules"][0]["backendRefs"].insert(0, {"name": "svc", "port": 8000, "weight": 0})
    plan = routes.plan_route(route, split(pool(ALPHA, 1), pool(GA, 4, namespace="other"), add_missing=True,
                                          rules=[0]))
    refs_after = plan.after["spec"]["rules"][0]["backendRefs"]
    assert [r["name"] for r in refs_after] == ["svc", "pool", "pool"]
    added = refs_after[2]
    assert list(added) == ["group", "kind", "name", "namespace", "weight", "filters"]
    assert added["namespace"] == "other" and added["weight"] == 4
    assert added["filters"] == refs_after[1]["filters"]
    assert added["filters"] is not refs_after[1]["filters"]
    assert plan.rules[0]["after"]["%s/InferencePool/other/pool" % GA] == 4


def test_add_missing_writes_no_namespace_when_it_is_the_routes():
    plan = routes.plan_route(live_route(), split(pool(ALPHA, 1), pool(GA, 1, namespace="default"),
                                                 add_missing=True, rules=[0]))
    assert "namespace" not in plan.after["spec"]["rules"][0]["backendRefs"][1]


def test_remove_zero_drops_listed_refs_at_zero_and_nothing_else():
    plan = routes.plan_route(live_route(), split(pool(ALPHA, 0), pool(GA, 100), remove_zero=True))
    rules = plan.after["spec"]["rules"]
    assert rules[1]["backendRefs"] == [
        {"group": GA, "kind": "InferencePool", "name": "pool", "weight": 100},
        {"name": "svc", "port": 8000, "weight": 5},
    ]
    assert plan.rules[1]["after"] == {GA_ID: 100, SVC_ID: 5}
    assert [r["index"] for r in plan.rules] == [0, 1]
    assert problems_of(plan).count("does not reference backend %s" % GA) == 1  # rule 0 lacks the GA pool


def test_after_remove_zero_the_same_call_is_a_no_op():
    finish = split(pool(ALPHA, 0), pool(GA, 100), remove_zero=True, rules=[1])
    done = routes.plan_route(live_route(), finish).after
    again = routes.plan_route(done, finish)
    assert not again.problems and not again.changed
    assert again.rules[0]["before"] == again.rules[0]["after"] == {GA_ID: 100, SVC_ID: 5}


def test_remove_zero_with_add_missing_moves_a_rule_to_the_new_pool_in_one_step():
    plan = routes.plan_route(live_route(), split(pool(ALPHA, 0), pool(GA, 100), remove_zero=True,
                                                 add_missing=True, rules=[0]))
    refs_after = plan.after["spec"]["rules"][0]["backendRefs"]
    assert [(r["group"], r["weight"]) for r in refs_after] == [(GA, 100)]
    assert refs_after[0]["filters"][0]["requestHeaderModifier"]["set"][0]["value"] == "a"


def test_zero_without_remove_zero_keeps_the_ref_and_add_missing_adds_it_at_zero():
    plan = routes.plan_route(live_route(), split(pool(ALPHA, 100), pool(GA, 0), add_missing=True, rules=[0]))
    assert plan.rules[0]["after"] == {ALPHA_ID: 100, GA_ID: 0}
    refs_after = plan.after["spec"]["rules"][0]["backendRefs"]
    assert refs_after[1]["weight"] == 0


def test_targets_are_the_listed_backends_still_referenced():
    plan = routes.plan_route(live_route(), split(pool(ALPHA, 0), pool(GA, 100), remove_zero=True, rules=[1]))
    assert [(where, key.group) for where, key in plan.targets] == [
        ("HTTPRoute default/llm-route rule 1 (canary)", GA)]


def test_observed_generation_is_the_oldest_over_parents_and_conditions():
    route = live_route()
    assert routes.observed_generation(route) == 2
    route["status"]["parents"][0]["conditions"].pop()
    assert routes.observed_generation(route) is None
    del route["status"]
    assert routes.observed_generation(route) is None


def test_parent_problems_judge_our_generation_not_a_later_one():
    route = live_route()
    route["metadata"]["generation"] = 9  # another writer moved on after our generation 2
    assert routes.parent_problems(route, 2) == []
    problems = routes.parent_problems(route, 3)
    assert len(problems) == 1 and "ResolvedRefs" in problems[0] and "observedGeneration 2" in problems[0]


def test_diff_shows_the_rules_before_and_after():
    plan = routes.plan_route(live_route(), split(pool(ALPHA, 0), pool(GA, 100), rules=[1]))
    diff = routes.route_diff(plan)
    assert diff["before_header"] == "HTTPRoute default/llm-route"
    assert diff["before"] == {"rules": live_route()["spec"]["rules"]}
    assert diff["after"]["rules"][1]["backendRefs"][2]["weight"] == 0


# Validation: each refusal names the route, the rule and the backend, and the fix.

@pytest.mark.parametrize("weight", ["50", True, 1.5, -1, api.MAX_BACKEND_WEIGHT + 1, None])
def test_weights_must_be_integers_in_range(weight):
    with pytest.raises(MigrationError) as refused:
        split(pool(ALPHA, weight), pool(GA, 1))
    message = str(refused.value)
    assert "backends[0] (pool)" in message and "from 0 to 1000000" in message
    assert refused.value.details["problems"]


def test_bounds_are_accepted():
    parsed = split(pool(ALPHA, 0), pool(GA, api.MAX_BACKEND_WEIGHT))
    assert [b.weight for b in parsed.backends] == [0, api.MAX_BACKEND_WEIGHT]


def test_some_listed_backend_must_keep_traffic():
    with pytest.raises(MigrationError, match="positive weight"):
        split(pool(ALPHA, 0), pool(GA, 0))


def test_backends_need_names_and_must_not_be_empty():
    with pytest.raises(MigrationError, match=r"backends\[1\] \(no name\): name is required"):
        split(pool(ALPHA, 1), dict(group=GA, weight=1))
    with pytest.raises(MigrationError, match="backends is empty"):
        routes.parse_split([])


@pytest.mark.parametrize("rule", [True, -1, "", 1.0, {"name": "x"}])
def test_rules_entries_are_names_or_indexes(rule):
    with pytest.raises(MigrationError, match="neither a rule name nor a rule index"):
        split(pool(ALPHA, 1), rules=[rule])


def test_parse_applies_the_module_defaults():
    parsed = routes.parse_split([{"name": "pool", "weight": 1}], default_namespace="ns")
    assert parsed.backends[0] == routes.Backend("", "InferencePool", "ns", "pool", 1)
    assert parsed.rules is None


@pytest.mark.parametrize("rule, shown", [("missing", "'missing'"), (7, "7")])
def test_a_rule_in_scope_must_exist(rule, shown):
    message = problems_of(routes.plan_route(live_route(), split(pool(ALPHA, 1), rules=[rule])))
    assert "HTTPRoute default/llm-route has no rule %s" % shown in message
    assert "named canary" in message and "fix the rules option" in message


def test_a_listed_backend_must_be_in_each_rule_in_scope_unless_add_missing():
    message = problems_of(routes.plan_route(live_route(), split(pool(ALPHA, 50), pool(GA, 50))))
    assert message == (
        "HTTPRoute default/llm-route rule 0 does not reference backend %s InferencePool default/pool; "
        "add it to the rule or set add_missing: true" % GA
    )


def test_an_explicit_rule_must_reference_a_listed_backend():
    message = problems_of(routes.plan_route(live_route(), split(pool(ALPHA, 1), pool(GA, 1), rules=[2],
                                                                add_missing=True)))
    assert "HTTPRoute default/llm-route rule 2 references none of the listed backends" in message


def test_a_route_must_reference_a_listed_backend():
    message = problems_of(routes.plan_route(live_route(), split(dict(group=GA, name="elsewhere", weight=1))))
    assert "HTTPRoute default/llm-route: no rule references any listed backend" in message
    assert "%s InferencePool default/elsewhere" % GA in message


def test_a_backend_referenced_twice_in_a_rule_is_refused():
    route = live_route()
    route["spec"]["rules"][0]["backendRefs"].append({"group": ALPHA, "kind": "InferencePool", "name": "pool"})
    message = problems_of(routes.plan_route(route, split(pool(ALPHA, 1), rules=[0])))
    assert "rule 0 references backend %s InferencePool default/pool 2 times" % ALPHA in message


def test_a_backend_listed_twice_is_refused():
    message = problems_of(routes.plan_route(live_route(), split(pool(ALPHA, 1), pool(ALPHA, 2, namespace="default"))))
    assert "HTTPRoute default/llm-route: some listed backends are the same backend" in message


def test_add_missing_refuses_to_invent_a_service_port():
    message = problems_of(routes.plan_route(live_route(), split(
        pool(ALPHA, 1), dict(name="svc2", kind="Service", weight=1), add_missing=True, rules=[0])))
    assert "rule 0: cannot add backend core Service default/svc2" in message and "port" in message


def test_references_any_matches_on_the_normalised_key():
    assert routes.references_any(live_route(), split(dict(kind="Service", name="svc", weight=1)))
    assert not routes.references_any(live_route(), split(dict(group=GA, name="svc", weight=1)))
    assert not routes.references_any(live_route(), split(pool(ALPHA, 1, namespace="other")))


def test_a_backend_listed_at_zero_may_be_absent_unless_add_missing_asks_for_it():
    # Rule 0 references only the preview pool, as a route put back to its Git version does.
    back_to_preview = routes.plan_route(live_route(), split(pool(ALPHA, 100), pool(GA, 0), rules=[0]))
    assert back_to_preview.problems == []
    assert back_to_preview.after["spec"]["rules"][0]["backendRefs"][0]["weight"] == 100
    prepared = routes.plan_route(live_route(), split(pool(ALPHA, 100), pool(GA, 0), rules=[0], add_missing=True))
    assert prepared.rules[0]["after"] == {ALPHA_ID: 100, GA_ID: 0}
