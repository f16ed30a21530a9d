# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Detection's view of the HTTPRoutes: which rules reach a pair of pools, with what weight, and the phase that follows."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import name_of, namespace_of


def route_usage(routes, alpha_key, ga_key):
    """The route rules that send to either pool of a pair, with the weight each side gets.

    Returns (routes, weights): routes as [{namespace, name, generation, hostnames, parents, rules: [{index,
    name, alpha_weight, ga_weight, other_weight, matches}]}], weights as the {alpha, ga} totals.
    Either key may be None (no such pool on that side).
    """
    entries, totals = [], {"alpha": 0, "ga": 0}
    for route in routes:
        rules = {}
        for rule_index, _ref_index, key, weight in refs.route_backends(route):
            rule = rules.setdefault(rule_index, {"alpha": 0, "ga": 0, "other": 0, "hit": False})
            side = "alpha" if key == alpha_key else "ga" if key == ga_key else "other"
            rule[side] += weight
            rule["hit"] = rule["hit"] or side != "other"
        used = []
        for rule_index in sorted(i for i, rule in rules.items() if rule["hit"]):
            rule = rules[rule_index]
            totals["alpha"] += rule["alpha"]
            totals["ga"] += rule["ga"]
            used.append({
                "index": rule_index,
                "name": route["spec"]["rules"][rule_index].get("name"),
                "alpha_weight": rule["alpha"],
                "ga_weight": rule["ga"],
                "other_weight": rule["other"],
                "matches": route["spec"]["rules"][rule_index].get("matches") or [],
            })
        if used:
            entries.append({"namespace": namespace_of(route), "name": name_of(route),
                            "generation": route["metadata"].get("generation"),
                            "hostnames": route["spec"].get("hostnames") or [], "parents": gateway_parents(route),
                            "rules": used})
    return entries, totals


def gateway_parents(route):
    """The Gateways a route attaches to, with the Gateway API defaults explicit (namespace: the route's)."""
    return [{"namespace": ref.get("namespace") or namespace_of(route), "name": ref["name"],
             "section_name": ref.get("sectionName"), "port": ref.get("port")}
            for ref in route["spec"].get("parentRefs") or []
            if ref.get("group", api.GATEWAY_GROUP) == api.GATEWAY_GROUP and ref.get("kind", api.GATEWAY.kind) == api.GATEWAY.kind]


def pool_phase(has_counterpart, weights):
    """Where an alpha pool's migration stands, from whether it has a v1 counterpart and the route weights."""
    if not has_counterpart:
        return api.PHASE_NOT_STARTED
    if weights["ga"] <= 0:
        return api.PHASE_SIDE_BY_SIDE
    if weights["alpha"] > 0:
        return api.PHASE_SHIFTING
    return api.PHASE_SHIFTED
