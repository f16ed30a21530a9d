import copy

from sandbox_fakes import (
    alpha_pool, alpha_stack, epp, ga_pool, gateway, gateway_class, pool_ref, route, snapshot, v1_epp_args,
)

from igw_sandbox.gateway import api, programme, status

POOL = "vllm-llama3-8b-instruct-preview"
GA = "vllm-llama3-8b-instruct-ga"
ADDRESS = "127.0.10.1"
NOW = 1_800_000_000.0


def _route(generation=1, refs=None):
    return route("llm-route", [{"backendRefs": refs or [pool_ref(POOL)]}], generation=generation)


def _conditions(entry):
    return {c["type"]: c for c in entry["conditions"]}


def _applied(obj, update):
    """The live object after the controller's merge patch of `update`."""
    result = copy.deepcopy(obj)
    result.setdefault("status", {}).update(copy.deepcopy(update.status))
    return result


def test_route_status_reports_accepted_resolved_and_reconciled_at_the_programmed_generation():
    programmed = programme.build(snapshot(*alpha_stack(), _route(generation=1)), ADDRESS)
    live = _route(generation=2)  # changed since: not programmed yet
    update = status.http_route(programmed, live, NOW)
    (parent,) = update.status["parents"]
    assert parent["controllerName"] == api.CONTROLLER_NAME
    assert parent["parentRef"]["name"] == "inference-gateway"
    conditions = _conditions(parent)
    assert {t: c["status"] for t, c in conditions.items()} == {
        "Accepted": "True", "ResolvedRefs": "True", "Reconciled": "True"}
    assert {c["observedGeneration"] for c in conditions.values()} == {1}


def test_status_is_not_rewritten_when_nothing_changed():
    programmed = programme.build(snapshot(*alpha_stack(), _route()), ADDRESS)
    live = _route()
    live = _applied(live, status.http_route(programmed, live, NOW))
    assert status.http_route(programmed, live, NOW + 60) is None


def test_a_flipped_condition_gets_a_new_transition_time_and_the_others_keep_theirs():
    live = _route()
    first = programme.build(snapshot(*alpha_stack(), live), ADDRESS)
    live = _applied(live, status.http_route(first, live, NOW))
    broken = programme.build(snapshot(*[o for o in alpha_stack() if o["kind"] != "InferencePool"], live), ADDRESS)
    (parent,) = status.http_route(broken, live, NOW + 60).status["parents"]
    conditions = _conditions(parent)
    assert conditions["ResolvedRefs"]["status"] == "False"
    assert conditions["ResolvedRefs"]["reason"] == "BackendNotFound"
    assert conditions["ResolvedRefs"]["lastTransitionTime"] > conditions["Accepted"]["lastTransitionTime"]


def test_missing_pool_crd_is_invalid_kind():
    live = _route(refs=[pool_ref(GA, api.GA_GROUP)])
    built = programme.build(snapshot(*alpha_stack(), live, missing=("inferencepools." + api.GA_GROUP,)), ADDRESS)
    (parent,) = status.http_route(built, live, NOW).status["parents"]
    assert _conditions(parent)["ResolvedRefs"]["reason"] == "InvalidKind"


def test_routes_to_gateways_of_other_controllers_get_no_entry_from_us():
    other = gateway("other-gateway", port=81, class_name="istio")
    live = route("foreign", [{"backendRefs": [pool_ref(POOL)]}], parent="other-gateway")
    built = programme.build(snapshot(*alpha_stack(), gateway_class("istio", "istio.io/gateway-controller"),
                                     other, live), ADDRESS)
    assert status.http_route(built, live, NOW) is None


def test_alpha_pool_status_uses_parent_with_an_object_reference():
    live_pool = alpha_pool(POOL)
    built = programme.build(snapshot(*alpha_stack(), _route()), ADDRESS)
    update = status.inference_pool(built, api.ALPHA_GROUP, live_pool, NOW)
    (parent,) = update.status["parent"]
    assert parent["parentRef"] == {"apiVersion": api.GATEWAY_API_VERSION, "kind": "Gateway",
                                   "name": "inference-gateway", "namespace": "default"}
    assert {c["type"]: c["status"] for c in parent["conditions"]} == {"Accepted": "True", "ResolvedRefs": "True"}


def test_ga_pool_status_uses_parents_and_flags_a_missing_epp_service():
    live_pool = ga_pool(GA)
    built = programme.build(snapshot(*alpha_stack(), live_pool, _route(refs=[pool_ref(GA, api.GA_GROUP)])), ADDRESS)
    (parent,) = status.inference_pool(built, api.GA_GROUP, live_pool, NOW).status["parents"]
    assert parent["parentRef"] == {"group": api.GATEWAY_GROUP, "kind": "Gateway", "name": "inference-gateway",
                                   "namespace": "default"}
    resolved = _conditions(parent)["ResolvedRefs"]
    assert (resolved["status"], resolved["reason"]) == ("False", "InvalidExtensionRef")


def test_pool_no_longer_referenced_loses_its_parent_entry():
    live_pool = ga_pool(GA)
    stack = [*alpha_stack(), live_pool, *epp(f"{GA}-epp", v1_epp_args(GA))]
    referenced = programme.build(snapshot(*stack, _route(refs=[pool_ref(GA, api.GA_GROUP)])), ADDRESS)
    live_pool = _applied(live_pool, status.inference_pool(referenced, api.GA_GROUP, live_pool, NOW))
    unreferenced = programme.build(snapshot(*stack, _route()), ADDRESS)
    assert status.inference_pool(unreferenced, api.GA_GROUP, live_pool, NOW).status == {"parents": []}


def test_the_oldest_gateway_is_programmed_with_the_sandbox_address_and_counts_attached_routes():
    live = gateway()
    built = programme.build(snapshot(*alpha_stack(), _route()), ADDRESS)
    update = status.gateway(built, live, {}, NOW)
    assert update.status["addresses"] == [{"type": "IPAddress", "value": ADDRESS}]
    assert _conditions(update.status)["Programmed"]["status"] == "True"
    (listener,) = update.status["listeners"]
    assert listener["attachedRoutes"] == 1
    assert status.gateway(built, _applied(live, update), {}, NOW + 5) is None


def test_gateway_is_not_programmed_when_its_port_cannot_be_bound():
    built = programme.build(snapshot(*alpha_stack()), ADDRESS)
    update = status.gateway(built, gateway(), {(ADDRESS, 80): "Address already in use"}, NOW)
    assert _conditions(update.status)["Programmed"]["status"] == "False"
    (listener,) = update.status["listeners"]
    assert _conditions(listener)["Accepted"]["reason"] == "PortUnavailable"


def test_every_gateway_gets_an_address_of_its_own_and_keeps_it():
    younger = gateway("second", created="2026-01-03T00:00:00Z")
    built = programme.build(snapshot(*alpha_stack(), younger), ADDRESS)
    oldest = status.gateway(built, gateway(), {}, NOW).status
    second = status.gateway(built, younger, {}, NOW).status
    assert oldest["addresses"] == [{"type": "IPAddress", "value": ADDRESS}]
    assert second["addresses"] == [{"type": "IPAddress", "value": "127.0.10.2"}]
    assert _conditions(second)["Programmed"]["status"] == "True"
    assert sorted(built.endpoints) == [(ADDRESS, 80), ("127.0.10.2", 80)]
    # The oldest Gateway goes away: the second keeps its address, and a new one takes the free .1.
    newest = gateway("third", created="2026-01-04T00:00:00Z")
    rebuilt = programme.build(snapshot(*[o for o in alpha_stack() if o["kind"] != "Gateway"], younger, newest),
                              ADDRESS, built.addresses)
    assert rebuilt.addresses == {("default", "second"): "127.0.10.2", ("default", "third"): ADDRESS}


def test_a_gateway_without_an_address_left_is_not_programmed():
    built = programme.build(snapshot(*alpha_stack()), ADDRESS)
    crowded = built.__class__(**{**built.__dict__, "addresses": {("default", "inference-gateway"): None}})
    update = status.gateway(crowded, gateway(), {}, NOW)
    assert update.status["addresses"] == []
    assert _conditions(update.status)["Programmed"]["reason"] == "AddressNotAssigned"


def test_gateway_not_yet_programmed_gets_no_status():
    built = programme.build(snapshot(gateway_class()), ADDRESS)
    assert status.gateway(built, gateway(), {}, NOW) is None


def test_gateway_class_of_the_gke_controller_is_accepted():
    update = status.gateway_class(gateway_class(), NOW)
    assert _conditions(update.status)["Accepted"]["status"] == "True"
    assert status.gateway_class(gateway_class("istio", "istio.io/gateway-controller"), NOW) is None
