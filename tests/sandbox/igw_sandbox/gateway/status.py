"""The status GKE would report, computed from the active Programme.

Each function compares what it wants with what the live object carries and returns
an Update only when something other than a lastTransitionTime differs, so the
controller writes nothing while the cluster stands still.
"""

import json
import time
from dataclasses import dataclass

from . import api, backends, topology
from .snapshot import POOL_KEYS


@dataclass(frozen=True)
class Update:
    key: str  # a snapshot.KEYS entry
    namespace: str
    name: str
    status: dict  # merge-patch body for the status subresource, without the "status" wrapper


def condition(type_, ok, reason, message, generation):
    return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message,
            "observedGeneration": generation}


def _comparable(conditions):
    return sorted((c["type"], c["status"], c["reason"], c.get("message", ""), c.get("observedGeneration"))
                  for c in conditions or [])


def _stamped(conditions, previous, now):
    """Conditions with lastTransitionTime kept from `previous` where the status did not flip."""
    before = {c["type"]: c for c in previous or []}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return [dict(c, lastTransitionTime=before[c["type"]]["lastTransitionTime"])
            if c["type"] in before and before[c["type"]]["status"] == c["status"]
            and before[c["type"]].get("lastTransitionTime") else dict(c, lastTransitionTime=stamp)
            for c in conditions]


def _comparable_entries(entries):
    return sorted(json.dumps({k: _comparable(v) if k == "conditions" else v for k, v in e.items()}, sort_keys=True)
                  for e in entries)


def _ref_key(ref):
    return json.dumps(ref, sort_keys=True)


def gateway_class(live_class, now):
    if live_class["spec"].get("controllerName") != api.CONTROLLER_NAME:
        return None
    wanted = [condition("Accepted", True, "Accepted", "Handled by the sandbox's simulated GKE gateway controller",
                        live_class["metadata"].get("generation"))]
    previous = live_class.get("status", {}).get("conditions")
    if _comparable(wanted) == _comparable(previous):
        return None
    return Update("gatewayclasses", "", live_class["metadata"]["name"],
                  {"conditions": _stamped(wanted, previous, now)})


def _listener_status(programme, gateway_key, listener, bind_errors, generation):
    address = programme.addresses.get(gateway_key)
    if address is None:
        problem = ("AddressNotAssigned", "the sandbox has no loopback address left for this Gateway")
    elif listener.protocol != "HTTP":
        problem = ("UnsupportedProtocol", f"the sandbox serves HTTP listeners only, not {listener.protocol}")
    elif bind_errors.get((address, listener.port)):
        problem = ("PortUnavailable", f"cannot listen on {address}:{listener.port}: "
                                      f"{bind_errors[(address, listener.port)]}")
    else:
        problem = None
    conditions = [
        condition("Accepted", problem is None, problem[0] if problem else "Accepted",
                  problem[1] if problem else "Accepted", generation),
        condition("Programmed", problem is None, "Invalid" if problem else "Programmed",
                  problem[1] if problem else "Programmed", generation),
        condition("ResolvedRefs", True, "ResolvedRefs", "ResolvedRefs", generation),
        condition("Conflicted", False, "NoConflicts", "NoConflicts", generation),
    ]
    return problem is None, {
        "name": listener.name,
        "supportedKinds": [{"group": api.GATEWAY_GROUP, "kind": api.HTTPROUTE_KIND}],
        "attachedRoutes": programme.routes_attached(gateway_key, listener.name),
        "conditions": conditions,
    }


def gateway(programme, live_gateway, bind_errors, now):
    key = topology.key_of(live_gateway)
    programmed = programme.gateways.get(key)
    if programmed is None:
        return None  # not programmed yet: GKE reports nothing before its first reconcile
    generation = programmed["metadata"].get("generation")
    listeners = [_listener_status(programme, key, listener, bind_errors, generation)
                 for listener in topology.listeners_of(programmed)]
    all_ready = bool(listeners) and all(ok for ok, _entry in listeners)
    if programme.addresses.get(key) is None:
        reason, message = "AddressNotAssigned", "the sandbox has no loopback address left for this Gateway"
    elif all_ready:
        reason, message = "Programmed", "Programmed"
    else:
        reason, message = "Invalid", "not every listener could be programmed"
    wanted = [
        condition("Accepted", True, "Accepted", "Accepted", generation),
        condition("Programmed", all_ready, reason, message, generation),
    ]
    previous = live_gateway.get("status", {})
    previous_listeners = {entry["name"]: entry for entry in previous.get("listeners", [])}
    wanted_listeners = [entry for _ok, entry in listeners]
    address = programme.addresses.get(key)
    addresses = [{"type": "IPAddress", "value": address}] if address else []
    if (_comparable(wanted) == _comparable(previous.get("conditions")) and previous.get("addresses") == addresses
            and _comparable_entries(wanted_listeners) == _comparable_entries(previous.get("listeners", []))):
        return None
    for entry in wanted_listeners:
        entry["conditions"] = _stamped(entry["conditions"], previous_listeners.get(entry["name"], {}).get(
            "conditions"), now)
    return Update("gateways", key[0], key[1], {
        "addresses": addresses, "conditions": _stamped(wanted, previous.get("conditions"), now),
        "listeners": wanted_listeners})


def _status_parent_ref(ref):
    """The parentRef as the API server stores it after defaulting."""
    return {"group": api.GATEWAY_GROUP, "kind": api.GATEWAY_KIND, **ref}


def http_route(programme, live_route, now):
    key = topology.key_of(live_route)
    programmed = programme.snapshot.get("httproutes", *key)
    if programmed is None:
        return None  # not programmed yet
    generation = programmed["metadata"].get("generation")
    problems = programme.ref_problems.get(key, [])
    resolved = condition("ResolvedRefs", not problems, problems[0].reason if problems else "ResolvedRefs",
                         "; ".join(p.message for p in problems) or "ResolvedRefs", generation)
    wanted = []
    for result in programme.attachments.get(key, []):
        reconciled_ok = result.accepted and not problems
        wanted.append({
            "parentRef": _status_parent_ref(result.parent_ref),
            "controllerName": api.CONTROLLER_NAME,
            "conditions": [
                condition("Accepted", result.accepted, result.reason, result.message, generation),
                resolved,
                # GKE's own condition; its reason on failure is not documented (see docs/sandbox.md).
                condition("Reconciled", reconciled_ok,
                          "ReconciliationSucceeded" if reconciled_ok else "ReconciliationFailed",
                          "Reconciled" if reconciled_ok else (result.message if not result.accepted
                                                              else resolved["message"]), generation),
            ],
        })
    previous = live_route.get("status", {}).get("parents", [])
    ours = [p for p in previous if p.get("controllerName") == api.CONTROLLER_NAME]
    if _comparable_entries(wanted) == _comparable_entries(ours):
        return None
    before = {_ref_key(p["parentRef"]): p.get("conditions") for p in ours}
    for entry in wanted:
        entry["conditions"] = _stamped(entry["conditions"], before.get(_ref_key(entry["parentRef"])), now)
    others = [p for p in previous if p.get("controllerName") != api.CONTROLLER_NAME]
    return Update("httproutes", key[0], key[1], {"parents": others + wanted})


def _pool_parent_ref(group, gateway_key):
    namespace, name = gateway_key
    if group == api.ALPHA_GROUP:
        # v0.3.0 types this as a core ObjectReference.
        return {"apiVersion": api.GATEWAY_API_VERSION, "kind": api.GATEWAY_KIND, "name": name, "namespace": namespace}
    return {"group": api.GATEWAY_GROUP, "kind": api.GATEWAY_KIND, "name": name, "namespace": namespace}


def inference_pool(programme, group, live_pool, now):
    key = topology.key_of(live_pool)
    programmed = programme.snapshot.pool(group, *key)
    if programmed is None:
        return None  # not programmed yet
    generation = programmed["metadata"].get("generation")
    service_problem = backends.epp_service_problem(programme.snapshot, backends.pool_spec(group, programmed))
    conditions = [
        condition("Accepted", True, "Accepted", "Accepted", generation),
        condition("ResolvedRefs", service_problem is None,
                  "InvalidExtensionRef" if service_problem else "ResolvedRefs",
                  service_problem or "ResolvedRefs", generation),
    ]
    wanted = [{"parentRef": _pool_parent_ref(group, gateway_key), "conditions": list(conditions)}
              for gateway_key in sorted(programme.pool_parents.get((group, *key), ()))]
    list_key = "parent" if group == api.ALPHA_GROUP else "parents"
    previous = live_pool.get("status", {}).get(list_key) or []
    if _comparable_entries(wanted) == _comparable_entries(previous):
        return None
    before = {_ref_key(p["parentRef"]): p.get("conditions") for p in previous}
    for entry in wanted:
        entry["conditions"] = _stamped(entry["conditions"], before.get(_ref_key(entry["parentRef"])), now)
    return Update(POOL_KEYS[group], key[0], key[1], {list_key: wanted})
