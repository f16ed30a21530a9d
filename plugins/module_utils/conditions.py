# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Reading status conditions the way the verification gates need them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def find_condition(conditions, condition_type):
    for condition in conditions or []:
        if condition.get("type") == condition_type:
            return condition
    return None


def is_true(conditions, condition_type, generation=None):
    """Whether the condition is True, and, given a generation, observed at or after it."""
    condition = find_condition(conditions, condition_type)
    if condition is None or condition.get("status") != "True":
        return False
    if generation is None:
        return True
    observed = condition.get("observedGeneration")
    return observed is not None and observed >= generation


def crd_established(crd):
    """Whether a CRD exists and is Established: the API server sets that only once it accepted the names."""
    return crd is not None and is_true((crd.get("status") or {}).get("conditions"), "Established")


def gateway_programmed(gateway):
    return is_true(gateway.get("status", {}).get("conditions"), "Programmed")


def route_parent_problems(route, required=("Accepted", "ResolvedRefs")):
    """Why a route is not ready at its current generation; empty when every parent is.

    A parent counts only with each required condition True and observed at the
    route's current generation, as Flagger checks before trusting weights.
    """
    generation = route["metadata"].get("generation")
    parents = route.get("status", {}).get("parents") or []
    name = "%s/%s" % (route["metadata"].get("namespace"), route["metadata"]["name"])
    if not parents:
        return ["HTTPRoute %s has no parent status yet (no gateway has accepted it)" % name]
    problems = []
    for parent in parents:
        parent_name = parent.get("parentRef", {}).get("name")
        for condition_type in required:
            if is_true(parent.get("conditions"), condition_type, generation):
                continue
            condition = find_condition(parent.get("conditions"), condition_type) or {}
            problems.append(
                "HTTPRoute %s parent %s: %s is %s (reason %s, observedGeneration %s, generation %s): %s"
                % (
                    name,
                    parent_name,
                    condition_type,
                    condition.get("status", "missing"),
                    condition.get("reason"),
                    condition.get("observedGeneration"),
                    generation,
                    condition.get("message", ""),
                )
            )
    return problems


# ResolvedRefs reasons that no wait cures: the route may not reference that backend until someone changes a
# ReferenceGrant or the route.
PERMANENT_REF_REASONS = ("RefNotPermitted",)


def refused_refs(route):
    """The parents that refuse a backendRef of the route at its current generation for a reason no wait cures."""
    generation = route["metadata"].get("generation")
    name = "%s/%s" % (route["metadata"].get("namespace"), route["metadata"]["name"])
    refused = []
    for parent in (route.get("status") or {}).get("parents") or []:
        condition = find_condition(parent.get("conditions"), "ResolvedRefs") or {}
        if (condition.get("status") == "False" and condition.get("reason") in PERMANENT_REF_REASONS
                and condition.get("observedGeneration") == generation):
            refused.append(
                "HTTPRoute %s parent %s refuses a backendRef (ResolvedRefs False, reason %s): %s. A backendRef into "
                "another namespace needs a ReferenceGrant in that namespace whose from allows HTTPRoutes of namespace "
                "%s and whose to allows the referenced kind and group (for a v1 pool: group inference.networking.k8s.io, "
                "kind InferencePool); extend it (the migration does so in phase 1 for grants that allow the preview "
                "pools) and run again"
                % (name, (parent.get("parentRef") or {}).get("name"), condition.get("reason"),
                   condition.get("message", ""), route["metadata"].get("namespace")))
    return refused


def pool_parent_statuses(pool):
    """The parent status entries of a pool in either API group (alpha says ``parent``)."""
    status = pool.get("status") or {}
    return status.get("parents") or status.get("parent") or []


def pool_accepted(pool):
    """True/False when a gateway wrote pool status, None when none did (some gateways never do)."""
    parents = [p for p in pool_parent_statuses(pool) if (p.get("parentRef") or {}).get("kind") != "Status"]
    if not parents:
        return None
    return all(is_true(p.get("conditions"), "Accepted") for p in parents)


def deployment_available(deployment):
    status = deployment.get("status") or {}
    return (status.get("availableReplicas") or 0) > 0 and is_true(status.get("conditions"), "Available")
