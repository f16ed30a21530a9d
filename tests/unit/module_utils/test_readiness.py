"""Readiness of the gate objects, read from the in-memory cluster holding status as a gateway writes it."""

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, readiness, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from memory_cluster import MemoryCluster
from support import Clock


def condition(kind, status="True", reason="Ready", message="", generation=None):
    found = {"type": kind, "status": status, "reason": reason, "message": message}
    if generation is not None:
        found["observedGeneration"] = generation
    return found


def gateway(*conditions_, address="127.0.10.1"):
    return api.GATEWAY, {
        "metadata": {"namespace": "default", "name": "inference-gateway"},
        "status": {"addresses": [{"value": address}], "conditions": list(conditions_)},
    }


def route(generation, *parent_conditions):
    return api.HTTP_ROUTE, {
        "metadata": {"namespace": "default", "name": "llm-route", "generation": generation},
        "status": {"parents": [{"parentRef": {"name": "inference-gateway"}, "conditions": list(parent_conditions)}]},
    }


def pool(rtype, *parent_conditions, written=True):
    status = {"parents": [{"parentRef": {"name": "inference-gateway", "kind": "Gateway"},
                           "conditions": list(parent_conditions)}]} if written else {}
    return rtype, {"metadata": {"namespace": "default", "name": "llm-ga"}, "status": status}


def deployment(available, replicas=1):
    return api.DEPLOYMENT, {
        "metadata": {"namespace": "default", "name": "llm-ga-epp"},
        "spec": {"replicas": replicas},
        "status": {"availableReplicas": available,
                   "conditions": [condition("Available", "True" if available else "False", "MinimumReplicasAvailable"
                                            if available else "MinimumReplicasUnavailable",
                                            "Deployment does not have minimum availability." if not available else "")]},
    }


GATEWAY = {"name": "inference-gateway", "namespace": "default"}
ROUTE = {"name": "llm-route", "namespace": "default"}
GA_POOL = {"group": api.GA_GROUP, "name": "llm-ga", "namespace": "default"}
EPP = {"name": "llm-ga-epp", "namespace": "default"}


def test_everything_ready():
    cluster = MemoryCluster(gateway(condition("Programmed")),
                            route(3, condition("Accepted", generation=3), condition("ResolvedRefs", generation=3)),
                            pool(api.GA_POOL, condition("Accepted")), deployment(1))

    result = readiness.readiness(cluster, GATEWAY, [ROUTE], [GA_POOL], [EPP])

    assert result["ready"] is True and result["problems"] == [] and result["tolerated"] == []
    assert result["gateway"]["address"] == "127.0.10.1" and result["gateway"]["programmed"] is True
    assert result["routes"][0]["generation"] == 3
    assert result["pools"][0]["accepted"] is True
    assert result["epp_deployments"][0]["available_replicas"] == 1
    assert result["summary"] == [
        "Gateway default/inference-gateway is programmed, address 127.0.10.1",
        "HTTPRoute default/llm-route is accepted with resolved refs by every parent at generation 3",
        "InferencePool inference.networking.k8s.io default/llm-ga is accepted",
        "Deployment default/llm-ga-epp is available, 1 of 1 replicas available",
    ]


def test_a_gateway_that_is_not_programmed_says_why():
    cluster = MemoryCluster(gateway(condition("Programmed", "False", "AddressNotAssigned", "no address yet")))

    result = readiness.readiness(cluster, GATEWAY)

    assert result["ready"] is False
    assert result["problems"] == ["Gateway default/inference-gateway is not programmed: "
                                  "Programmed is False (reason AddressNotAssigned): no address yet"]


def test_a_missing_gateway_is_not_ready():
    result = readiness.readiness(MemoryCluster(), GATEWAY)

    assert result["gateway"]["found"] is False and result["ready"] is False
    assert "not found" in result["problems"][0]


def test_a_route_counts_only_at_its_current_generation():
    stale = MemoryCluster(route(4, condition("Accepted", generation=3), condition("ResolvedRefs", generation=3)))

    result = readiness.readiness(stale, routes=[ROUTE])

    assert result["ready"] is False
    assert len(result["problems"]) == 2 and "observedGeneration 3, generation 4" in result["problems"][0]


def test_unresolved_backend_refs_make_the_route_not_ready():
    cluster = MemoryCluster(route(2, condition("Accepted", generation=2),
                                  condition("ResolvedRefs", "False", "BackendNotFound", "pool llm-ga not found", 2)))

    result = readiness.readiness(cluster, routes=[ROUTE])

    assert result["ready"] is False
    assert "ResolvedRefs is False (reason BackendNotFound" in result["problems"][0]


def test_a_rejected_pool_fails_in_both_modes():
    cluster = MemoryCluster(pool(api.GA_POOL, condition("Accepted", "False", "NotSupportedByGateway", "no")))

    for mode in readiness.POOL_STATUS_MODES:
        result = readiness.readiness(cluster, pools=[GA_POOL], pool_status_mode=mode)
        assert result["ready"] is False
        assert result["problems"] == ["InferencePool inference.networking.k8s.io default/llm-ga is not accepted by "
                                      "parent inference-gateway: Accepted is False (reason NotSupportedByGateway): no"]


def test_a_pool_without_status_passes_only_in_tolerant_mode():
    cluster = MemoryCluster(pool(api.GA_POOL, written=False))

    tolerant = readiness.readiness(cluster, pools=[GA_POOL], pool_status_mode="tolerant")
    strict = readiness.readiness(cluster, pools=[GA_POOL], pool_status_mode="strict")

    assert tolerant["ready"] is True and tolerant["pools"][0]["accepted"] is None
    assert tolerant["tolerated"] == ["InferencePool inference.networking.k8s.io default/llm-ga: no gateway has written "
                                     "its status, so Accepted cannot be checked (pool status mode tolerant lets it pass)"]
    assert tolerant["summary"] == tolerant["tolerated"]
    assert strict["ready"] is False and strict["tolerated"] == []
    assert strict["problems"][0].endswith("(pool status mode strict)")


def test_the_pool_group_picks_the_api_group_to_read():
    cluster = MemoryCluster(pool(api.ALPHA_POOL, condition("Accepted")))

    assert readiness.readiness(cluster, pools=[dict(GA_POOL, group=api.ALPHA_GROUP)])["ready"] is True
    assert readiness.readiness(cluster, pools=[GA_POOL])["problems"] == [
        "InferencePool inference.networking.k8s.io default/llm-ga not found"]


def test_an_unknown_pool_group_is_refused():
    with pytest.raises(MigrationError, match="has group 'example.com'"):
        readiness.readiness(MemoryCluster(), pools=[dict(GA_POOL, group="example.com")])


def test_an_unavailable_epp_deployment_says_how_many_replicas_are_up():
    result = readiness.readiness(MemoryCluster(deployment(0)), deployments=[EPP])

    assert result["ready"] is False
    assert result["problems"] == ["Deployment default/llm-ga-epp is not available: 0 of 1 replicas available, "
                                  "Available is False (reason MinimumReplicasUnavailable): "
                                  "Deployment does not have minimum availability."]
    assert result["summary"] == result["problems"]


def test_waiting_stops_as_soon_as_everything_is_ready():
    clock = Clock()
    states = iter([{"ready": False}, {"ready": False}, {"ready": True}])

    result = readiness.wait_until_ready(lambda: next(states), timeout=60, clock=clock, sleep=clock.sleep)

    assert result == {"ready": True, "waited_seconds": 4.0}
    assert clock.sleeps == [waiting.POLL_SECONDS] * 2


def test_waiting_gives_up_at_the_timeout_with_the_last_state():
    clock = Clock()

    result = readiness.wait_until_ready(lambda: {"ready": False, "problems": ["late"]}, timeout=5, clock=clock,
                                        sleep=clock.sleep)

    assert result == {"ready": False, "problems": ["late"], "waited_seconds": 5.0}
    assert clock.sleeps == [2.0, 2.0, 1.0]


def test_no_timeout_reads_once():
    clock = Clock()

    result = readiness.wait_until_ready(lambda: {"ready": False}, timeout=0, clock=clock, sleep=clock.sleep)

    assert result["ready"] is False and clock.sleeps == []


def route_with_backends(weights, generation=3):
    rtype, body = route(generation, condition("Accepted", generation=generation),
                        condition("ResolvedRefs", generation=generation))
    body["spec"] = {"rules": [{"backendRefs": [
        {"group": group, "kind": "InferencePool", "name": "llm-%s" % suffix, "weight": weight}
        for group, suffix, weight in weights]}]}
    body["metadata"]["managedFields"] = [{"manager": "argocd-controller", "operation": "Update",
                                          "time": "2026-12-04T10:00:07Z", "fieldsV1": {"f:spec": {"f:rules": {}}}}]
    return rtype, body


WRITTEN_50_50 = [{"index": 0, "weights": {"%s/InferencePool/default/llm-preview" % api.ALPHA_GROUP: 50,
                                          "%s/InferencePool/default/llm-ga" % api.GA_GROUP: 50}}]


def test_a_route_that_sends_what_was_written_is_ready():
    cluster = MemoryCluster(route_with_backends([(api.ALPHA_GROUP, "preview", 1), (api.GA_GROUP, "ga", 1)]))

    result = readiness.readiness(cluster, routes=[dict(ROUTE, rules=WRITTEN_50_50)])

    assert result["ready"] and result["reverted"] == []
    assert result["summary"] == ["HTTPRoute default/llm-route is accepted with resolved refs by every parent at "
                                 "generation 3 and sends the traffic the migration wrote"]


def test_a_reverted_route_is_not_ready_names_its_writer_and_ends_the_wait_at_once():
    cluster = MemoryCluster(route_with_backends([(api.ALPHA_GROUP, "preview", 1)]))
    clock = Clock()

    result = readiness.wait_until_ready(
        lambda: readiness.readiness(cluster, routes=[dict(ROUTE, rules=WRITTEN_50_50)]), timeout=60, clock=clock,
        sleep=clock.sleep)

    assert not result["ready"] and clock.sleeps == []
    [reverted] = result["reverted"]
    assert result["problems"] == [reverted] and result["routes"][0]["reverted"] == [reverted]
    assert "field manager argocd-controller (Update at 2026-12-04T10:00:07Z)" in reverted
    assert "now sends %s/InferencePool/default/llm-preview 100 %%" % api.ALPHA_GROUP in reverted


def test_without_written_rules_only_the_status_counts():
    cluster = MemoryCluster(route_with_backends([(api.ALPHA_GROUP, "preview", 1)]))

    assert readiness.readiness(cluster, routes=[ROUTE])["ready"]


def test_a_backendref_refused_for_want_of_a_reference_grant_ends_the_wait_at_once_and_says_what_to_extend():
    cluster = MemoryCluster(route(4, condition("Accepted", generation=4),
                                  condition("ResolvedRefs", "False", "RefNotPermitted", "not permitted", generation=4)))
    clock = Clock()

    result = readiness.wait_until_ready(lambda: readiness.readiness(cluster, routes=[ROUTE]), timeout=60, clock=clock,
                                        sleep=clock.sleep)

    assert not result["ready"] and clock.sleeps == []
    [refused] = result["refused"]
    assert "HTTPRoute default/llm-route parent inference-gateway refuses a backendRef" in refused
    assert "ReferenceGrant" in refused and "group inference.networking.k8s.io" in refused


def test_a_refusal_seen_at_an_older_generation_is_waited_out():
    # The gateway has not yet read the route since the grant changed: its old verdict is no reason to stop.
    cluster = MemoryCluster(route(5, condition("Accepted", generation=4),
                                  condition("ResolvedRefs", "False", "RefNotPermitted", generation=4)))
    clock = Clock()

    result = readiness.wait_until_ready(lambda: readiness.readiness(cluster, routes=[ROUTE]), timeout=10, clock=clock,
                                        sleep=clock.sleep)

    assert result["refused"] == [] and not result["ready"] and sum(clock.sleeps) == 10


def test_every_gateway_listed_is_checked():
    programmed = gateway(condition("Programmed"))
    cluster = MemoryCluster(programmed)

    result = readiness.readiness(cluster, gateways=[GATEWAY, {"name": "internal", "namespace": "platform"}])

    assert [g["found"] for g in result["gateways"]] == [True, False]
    assert not result["ready"] and result["problems"] == [
        "Gateway platform/internal not found: check the Gateway's name and namespace"]


def test_each_kind_has_its_own_verdict_in_the_order_read():
    cluster = MemoryCluster(gateway(condition("Programmed")),
                            route(4, condition("Accepted", generation=3), condition("ResolvedRefs", generation=3)),
                            pool(api.GA_POOL, written=False), deployment(0))

    result = readiness.readiness(cluster, routes=[ROUTE], pools=[GA_POOL], deployments=[EPP],
                                 gateways=[GATEWAY, {"name": "internal", "namespace": "platform"}])

    by_kind = result["by_kind"]
    assert list(by_kind) == list(readiness.KINDS)
    assert by_kind["gateways"] == {
        "ready": False, "tolerated": [],
        "problems": ["Gateway platform/internal not found: check the Gateway's name and namespace"],
        "summary": ["Gateway default/inference-gateway is programmed, address 127.0.10.1",
                    "Gateway platform/internal not found: check the Gateway's name and namespace"]}
    assert not by_kind["routes"]["ready"] and len(by_kind["routes"]["problems"]) == 2
    assert by_kind["routes"]["summary"] == [result["routes"][0]["summary"]]
    assert by_kind["pools"] == {"ready": True, "problems": [], "summary": result["tolerated"],
                                "tolerated": result["tolerated"]}
    assert not by_kind["epp_deployments"]["ready"] and by_kind["epp_deployments"]["tolerated"] == []
    assert by_kind["epp_deployments"]["summary"] == by_kind["epp_deployments"]["problems"]
    assert result["problems"] == [p for kind in readiness.KINDS for p in by_kind[kind]["problems"]]
    assert result["summary"] == [line for kind in readiness.KINDS for line in by_kind[kind]["summary"]]


def test_a_kind_not_asked_for_is_ready_with_nothing_to_say():
    result = readiness.readiness(MemoryCluster(gateway(condition("Programmed"))), GATEWAY)

    assert result["by_kind"]["gateways"]["summary"] == ["Gateway default/inference-gateway is programmed, address "
                                                        "127.0.10.1"]
    for kind in ("routes", "pools", "epp_deployments"):
        assert result["by_kind"][kind] == {"ready": True, "problems": [], "summary": [], "tolerated": []}


def test_a_reverted_route_read_with_a_gateway_not_yet_programmed_waits_for_the_gateway():
    # Read on its own, the Gateway had the whole wait to become programmed before its routes were read.
    cluster = MemoryCluster(gateway(condition("Programmed", "False", "Pending")),
                            route_with_backends([(api.ALPHA_GROUP, "preview", 1)]))
    clock = Clock()

    def read():
        if clock() >= 4:
            cluster.add(*gateway(condition("Programmed")))
        return readiness.readiness(cluster, routes=[dict(ROUTE, rules=WRITTEN_50_50)], gateways=[GATEWAY])

    result = readiness.wait_until_ready(read, timeout=60, clock=clock, sleep=clock.sleep)

    assert clock.sleeps == [waiting.POLL_SECONDS] * 2
    assert result["by_kind"]["gateways"]["ready"] and not result["by_kind"]["routes"]["ready"]
    assert len(result["reverted"]) == 1


def test_a_reverted_route_fails_the_wait_at_the_timeout_when_the_gateway_never_gets_programmed():
    cluster = MemoryCluster(gateway(condition("Programmed", "False", "Pending")),
                            route_with_backends([(api.ALPHA_GROUP, "preview", 1)]))
    clock = Clock()

    result = readiness.wait_until_ready(
        lambda: readiness.readiness(cluster, routes=[dict(ROUTE, rules=WRITTEN_50_50)], gateways=[GATEWAY]),
        timeout=6, clock=clock, sleep=clock.sleep)

    assert sum(clock.sleeps) == 6 and not result["by_kind"]["gateways"]["ready"]
