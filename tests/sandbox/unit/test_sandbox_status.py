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
    programmed = programme.build(snapshot(*alpha_stack(), _route(generation=1)))
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
    programmed = programme.build(snapshot(*alpha_stack(), _route()))
    live = _route()
    live = _applied(live, status.http_route(programmed, live, NOW))
    assert status.http_route(programmed, live, NOW + 60) is None


def test_a_flipped_condition_gets_a_new_transition_time_and_the_others_keep_theirs():
    live = _route()
    first = programme.build(snapshot(*alpha_stack(), live))
    live = _applied(live, status.http_route(first, live, NOW))
    broken = programme.build(snapshot(*[o for o in alpha_stack() if o["kind"] != "InferencePool"], live))
    (parent,) = status.http_route(broken, live, NOW + 60).status["parents"]
    conditions = _conditions(parent)
    assert conditions["ResolvedRefs"]["status"] == "False"
    assert conditions["ResolvedRefs"]["reason"] == "BackendNotFound"
    assert conditions["ResolvedRefs"]["lastTransitionTime"] > conditions["Accepted"]["lastTransitionTime"]


def test_missing_pool_crd_is_invalid_kind():
    live = _route(refs=[pool_ref(GA, api.GA_GROUP)])
    built = programme.build(snapshot(*alpha_stack(), live, missing=("inferencepools." + api.GA_GROUP,)))
    (parent,) = status.http_route(built, live, NOW).status["parents"]
    assert _conditions(parent)["ResolvedRefs"]["reason"] == "InvalidKind"


def test_routes_to_gateways_of_other_controllers_get_no_entry_from_us():
    other = gateway("other-gateway", port=81, class_name="istio")
    live = route("foreign", [{"backendRefs": [pool_ref(POOL)]}], parent="other-gateway")
    built = programme.build(snapshot(*alpha_stack(), gateway_class("istio", "istio.io/gateway-controller"),
                                     other, live))
    assert status.http_route(built, live, NOW) is None


def test_alpha_pool_status_uses_parent_with_an_object_reference():
    live_pool = alpha_pool(POOL)
    built = programme.build(snapshot(*alpha_stack(), _route()))
    update = status.inference_pool(built, api.ALPHA_GROUP, live_pool, NOW)
    (parent,) = update.status["parent"]
    assert parent["parentRef"] == {"apiVersion": api.GATEWAY_API_VERSION, "kind": "Gateway",
                                   "name": "inference-gateway", "namespace": "default"}
    assert {c["type"]: c["status"] for c in parent["conditions"]} == {"Accepted": "True", "ResolvedRefs": "True"}


def test_ga_pool_status_uses_parents_and_flags_a_missing_epp_service():
    live_pool = ga_pool(GA)
    built = programme.build(snapshot(*alpha_stack(), live_pool, _route(refs=[pool_ref(GA, api.GA_GROUP)])))
    (parent,) = status.inference_pool(built, api.GA_GROUP, live_pool, NOW).status["parents"]
    assert parent["parentRef"] == {"group": api.GATEWAY_GROUP, "kind": "Gateway", "name": "inference-gateway",
                                   "namespace": "default"}
    resolved = _conditions(parent)["ResolvedRefs"]
    assert (resolved["status"], resolved["reason"]) == ("False", "InvalidExtensionRef")


def test_pool_no_longer_referenced_loses_its_parent_entry():
    live_pool = ga_pool(GA)
    stack = [*alpha_stack(), live_pool, *epp(f"{GA}-epp", v1_epp_args(GA))]
    referenced = programme.build(snapshot(*stack, _route(refs=[pool_ref(GA, api.GA_GROUP)])))
    live_pool = _applied(live_pool, status.inference_pool(referenced, api.GA_GROUP, live_pool, NOW))
    unreferenced = programme.build(snapshot(*stack, _route()))
    assert status.inference_pool(unreferenced, api.GA_GROUP, live_pool, NOW).status == {"parents": []}


def test_gateway_is_programmed_with_the_sandbox_address_and_counts_attached_routes():
    live = gateway()
    built = programme.build(snapshot(*alpha_stack(), _route()))
    update = status.gateway(built, live, {}, ADDRESS, NOW)
    assert update.status["addresses"] == [{"type": "IPAddress", "value": ADDRESS}]
    assert _conditions(update.status)["Programmed"]["status"] == "True"
    (listener,) = update.status["listeners"]
    assert listener["attachedRoutes"] == 1
    assert status.gateway(built, _applied(live, update), {}, ADDRESS, NOW + 5) is None


def test_gateway_is_not_programmed_when_its_port_cannot_be_bound_or_is_taken():
    built = programme.build(snapshot(*alpha_stack()))
    update = status.gateway(built, gateway(), {80: "Address already in use"}, ADDRESS, NOW)
    assert _conditions(update.status)["Programmed"]["status"] == "False"
    younger = gateway("second", created="2026-01-03T00:00:00Z")
    built = programme.build(snapshot(*alpha_stack(), younger))
    (listener,) = status.gateway(built, younger, {}, ADDRESS, NOW).status["listeners"]
    assert _conditions(listener)["Accepted"]["reason"] == "PortUnavailable"


def test_gateway_not_yet_programmed_gets_no_status():
    built = programme.build(snapshot(gateway_class()))
    assert status.gateway(built, gateway(), {}, ADDRESS, NOW) is None


def test_gateway_class_of_the_gke_controller_is_accepted():
    update = status.gateway_class(gateway_class(), NOW)
    assert _conditions(update.status)["Accepted"]["status"] == "True"
    assert status.gateway_class(gateway_class("istio", "istio.io/gateway-controller"), NOW) is None
