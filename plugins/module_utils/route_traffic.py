# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What a route's rules send where, and whether that is still what the migration wrote.

traffic_split plans and reports weights with these readers; the readiness gates hold a live route
against the weights the migration last wrote, so that a step that another writer put back (GitOps
self-heal, a controller, a person) fails, naming that writer from metadata.managedFields.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import last_writer


def route_label(route):
    return "HTTPRoute %s/%s" % (route["metadata"].get("namespace"), route["metadata"]["name"])


def rule_label(index, rule):
    name = rule.get("name")
    return "rule %d (%s)" % (index, name) if name else "rule %d" % index


def key_id(key):
    """How results name a backend: "<group>/<kind>/<namespace>/<name>" (core group is empty)."""
    return "/".join(key)


def rule_weights(rule, route_namespace):
    """Every backend of a rule as key_id -> weight, defaults applied (duplicate refs add up)."""
    weights = {}
    for ref in rule.get("backendRefs") or []:
        key = key_id(refs.backend_key(ref, route_namespace))
        weights[key] = weights.get(key, 0) + refs.weight_of(ref)
    return weights


def traffic_shares(weights):
    """Backend -> its share of a rule's traffic (0..1); backends at weight 0 get none, and a rule whose weights
    are all 0 sends nothing."""
    total = sum(weights.values())
    return dict((key, float(weight) / total) for key, weight in weights.items() if weight) if total else {}


def _percentages(shares):
    return ", ".join("%s %s %%" % (key, ("%.1f" % (share * 100)).rstrip("0").rstrip("."))
                     for key, share in sorted(shares.items())) or "nothing"


def reverted_rules(route, written):
    """How another writer changed the traffic of rules the migration wrote; empty when each still sends the same shares.

    ``written`` is [{index, weights}], each rule's backend weights (key_id -> weight) as the migration left them.
    Shares are compared, not weights: a rule put back to a single backend without a weight sends what 100 on it
    and 0 on the v1 pool send.
    """
    rules = route.get("spec", {}).get("rules") or []
    namespace = route["metadata"].get("namespace")
    changed = []
    for rule in written:
        index = int(rule["index"])
        wrote = traffic_shares(dict((key, int(weight)) for key, weight in rule["weights"].items()))
        if index >= len(rules):
            changed.append("rule %d is gone (the migration wrote %s there)" % (index, _percentages(wrote)))
            continue
        now = traffic_shares(rule_weights(rules[index], namespace))
        if set(now) != set(wrote) or any(abs(now[key] - wrote[key]) > 1e-9 for key in now):
            changed.append("%s now sends %s; the migration wrote %s"
                           % (rule_label(index, rules[index]), _percentages(now), _percentages(wrote)))
    if not changed:
        return []
    writer = last_writer(route, owning=("f:spec", "f:rules"))
    return ["%s was changed by another writer after the migration wrote it (%s): %s. Something reverts the route, "
            "for example GitOps self-heal (Argo CD, Flux) or a controller; stop it for this route (suspend the sync, "
            "or change the route's source in Git) and run the playbook again"
            % (route_label(route), "last written by %s" % writer if writer else "metadata.managedFields names no "
               "other writer of its rules", "; ".join(changed))]
