# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Whether the objects the verification gates look at are ready, and if not, why.

Each reader returns one plain dict per object with ``ready`` and ``problems``
(sentences naming the object and what its status says): a gate passes on
``ready`` and shows the problems as its failure message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, conditions, gateway_address, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.route_traffic import reverted_rules

POOL_STATUS_MODES = ("strict", "tolerant")


def _condition_text(conditions_list, condition_type):
    condition = conditions.find_condition(conditions_list, condition_type) or {}
    return "%s is %s (reason %s): %s" % (
        condition_type, condition.get("status", "missing"), condition.get("reason"), condition.get("message", ""))


def _judged(state, problems, healthy):
    """The state with its verdict and a one-line summary: what was seen when ready, the problems otherwise."""
    return dict(state, ready=not problems, problems=problems, summary="; ".join(problems) if problems else healthy)


def gateway_readiness(cluster, name, namespace):
    who = "%s %s/%s" % (api.GATEWAY.kind, namespace, name)
    gateway = cluster.get(api.GATEWAY, name, namespace)
    state = dict(name=name, namespace=namespace, found=gateway is not None, programmed=False, address=None,
                 listeners=[listener.get("name") for listener in gateway_address.listeners(gateway or {})])
    if gateway is None:
        return _judged(state, ["%s not found: check the Gateway's name and namespace" % who], None)
    status = gateway.get("status") or {}
    addresses = status.get("addresses") or []
    state.update(programmed=conditions.gateway_programmed(gateway), address=addresses[0].get("value") if addresses else None)
    problems = [] if state["programmed"] else [
        "%s is not programmed: %s" % (who, _condition_text(status.get("conditions"), "Programmed"))]
    return _judged(state, problems, "%s is programmed, address %s" % (who, state["address"]))


def route_readiness(cluster, name, namespace, written=None):
    """``written``: the rules the migration last wrote ([{index, weights}]); a route whose traffic another writer
    changed since is not ready and never will be by waiting (``reverted``)."""
    who = "%s %s/%s" % (api.HTTP_ROUTE.kind, namespace, name)
    route = cluster.get(api.HTTP_ROUTE, name, namespace)
    if route is None:
        return _judged(dict(name=name, namespace=namespace, found=False, generation=None, reverted=[], refused=[]),
                       ["%s not found" % who], None)
    reverted = reverted_rules(route, written or [])
    state = dict(name=name, namespace=namespace, found=True, generation=route["metadata"].get("generation"),
                 reverted=reverted, refused=conditions.refused_refs(route))
    healthy = "%s is accepted with resolved refs by every parent at generation %s" % (who, state["generation"])
    if written:
        healthy += " and sends the traffic the migration wrote"
    return _judged(state, reverted + conditions.route_parent_problems(route), healthy)


def pool_readiness(cluster, group, name, namespace, mode):
    """A pool is ready when its gateway accepted it; in tolerant mode also when no gateway wrote its status."""
    rtype = api.POOL_TYPES.get(group)
    if rtype is None:
        raise MigrationError("pool %s/%s has group %r; an InferencePool's group is one of %s"
                             % (namespace, name, group, ", ".join(sorted(api.POOL_TYPES))))
    if mode not in POOL_STATUS_MODES:
        raise MigrationError("pool status mode %r is not one of %s" % (mode, ", ".join(POOL_STATUS_MODES)))
    who = "%s %s %s/%s" % (rtype.kind, group, namespace, name)
    pool = cluster.get(rtype, name, namespace)
    state = dict(group=group, name=name, namespace=namespace, found=pool is not None, accepted=False, tolerated=None)
    if pool is None:
        return _judged(state, ["%s not found" % who], None)
    accepted = conditions.pool_accepted(pool)
    state["accepted"] = accepted
    if accepted is None:
        message = "%s: no gateway has written its status, so Accepted cannot be checked" % who
        if mode == "strict":
            return _judged(state, [message + " (pool status mode strict)"], None)
        state["tolerated"] = message + " (pool status mode tolerant lets it pass)"
        return _judged(state, [], state["tolerated"])
    return _judged(state, [] if accepted else [
        "%s is not accepted by parent %s: %s" % (who, (parent.get("parentRef") or {}).get("name"),
                                                 _condition_text(parent.get("conditions"), "Accepted"))
        for parent in conditions.pool_parent_statuses(pool)
        if not conditions.is_true(parent.get("conditions"), "Accepted")
    ], "%s is accepted" % who)


def deployment_readiness(cluster, name, namespace):
    who = "%s %s/%s" % (api.DEPLOYMENT.kind, namespace, name)
    deployment = cluster.get(api.DEPLOYMENT, name, namespace)
    if deployment is None:
        return _judged(dict(name=name, namespace=namespace, found=False, available_replicas=0, replicas=None),
                       ["%s not found" % who], None)
    status = deployment.get("status") or {}
    state = dict(name=name, namespace=namespace, found=True, available_replicas=status.get("availableReplicas") or 0,
                 replicas=(deployment.get("spec") or {}).get("replicas"))
    replicas = "%d of %s replicas available" % (state["available_replicas"], state["replicas"])
    problems = [] if conditions.deployment_available(deployment) else [
        "%s is not available: %s, %s" % (who, replicas, _condition_text(status.get("conditions"), "Available"))]
    return _judged(state, problems, "%s is available, %s" % (who, replicas))


KINDS = ("gateways", "routes", "pools", "epp_deployments")


def _kind_verdict(states):
    """The verdict over the objects of one kind, in their order: ready when none has a problem."""
    problems = [problem for state in states for problem in state["problems"]]
    return dict(ready=not problems, problems=problems, summary=[state["summary"] for state in states],
                tolerated=[state["tolerated"] for state in states if state.get("tolerated")])


def readiness(cluster, gateway=None, routes=(), pools=(), deployments=(), pool_status_mode="tolerant", gateways=()):
    """The readiness of every object named, of each kind (``by_kind``, so that one read serves a check per kind),
    and overall: ready only when each object is."""
    result = dict(gateways=[gateway_readiness(cluster, g["name"], g["namespace"]) for g in gateways],
                  routes=[route_readiness(cluster, r["name"], r["namespace"], r.get("rules")) for r in routes],
                  pools=[pool_readiness(cluster, p["group"], p["name"], p["namespace"], pool_status_mode) for p in pools],
                  epp_deployments=[deployment_readiness(cluster, d["name"], d["namespace"]) for d in deployments])
    states = dict((kind, result[kind]) for kind in KINDS)
    if gateway:
        result["gateway"] = gateway_readiness(cluster, gateway["name"], gateway["namespace"])
        states["gateways"] = [result["gateway"]] + states["gateways"]
    result["by_kind"] = dict((kind, _kind_verdict(states[kind])) for kind in KINDS)
    result["problems"] = [problem for kind in KINDS for problem in result["by_kind"][kind]["problems"]]
    result["summary"] = [line for kind in KINDS for line in result["by_kind"][kind]["summary"]]
    result["tolerated"] = result["by_kind"]["pools"]["tolerated"]
    result["reverted"] = [problem for route in result["routes"] for problem in route["reverted"]]
    result["refused"] = [problem for route in result["routes"] for problem in route["refused"]]
    result["ready"] = not result["problems"]
    return result


def _hopeless(state):
    """Whether to stop before everything is ready: a route was reverted or refuses a backendRef (waiting cures
    neither) and every object of the other kinds is ready. Gateways, pools or EPPs read together with such a
    route still get their wait to become ready, as they did when each kind was read on its own."""
    if not (state.get("reverted") or state.get("refused")):
        return False
    return all(verdict["ready"] for kind, verdict in (state.get("by_kind") or {}).items() if kind != "routes")


def wait_until_ready(read, timeout, clock=time.monotonic, sleep=time.sleep):
    """Call ``read()`` until its result is ready, there is no hope it gets ready (``_hopeless``), or ``timeout``
    seconds have passed; return the last result."""
    polled = waiting.poll(read, lambda state: state["ready"] or _hopeless(state), timeout, clock=clock, sleep=sleep)
    state = polled.value
    state["waited_seconds"] = round(polled.waited, 1)
    return state
