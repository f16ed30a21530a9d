# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The HTTPRoute weight transform of traffic_split, as plain functions on dicts.

``plan_route`` takes a route as read from the API server and returns what it
should become: only the weights of the listed backendRefs change (and, when
asked, listed refs are added beside an existing one or dropped at weight 0).
Everything else is the same Python object content in the same order, so the
route serialises byte for byte as it was read. Problems are collected, not
raised, so that one refusal can name everything wrong in every route before
anything is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
from collections import namedtuple

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, conditions, refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.route_traffic import (
    route_label,
    rule_label,
    rule_weights,
)

READY_CONDITIONS = ("Accepted", "ResolvedRefs")


class Backend(namedtuple("Backend", ["group", "kind", "namespace", "name", "weight"])):
    """One listed backend; ``namespace`` None means the namespace of each route."""

    __slots__ = ()

    def key(self, route_namespace):
        return refs.BackendKey(self.group, self.kind, self.namespace or route_namespace, self.name)


class Split(namedtuple("Split", ["backends", "rules", "add_missing", "remove_zero"])):
    """What traffic_split is asked to do; ``rules`` None means every rule that references a listed backend."""

    __slots__ = ()

    def weights(self, route_namespace):
        """Listed backends of one route, in the order given, as BackendKey -> weight."""
        return dict((backend.key(route_namespace), backend.weight) for backend in self.backends)


RoutePlan = namedtuple("RoutePlan", ["namespace", "name", "before", "after", "changed", "rules", "targets", "problems"])
RoutePlan.__doc__ = """The outcome of plan_route.

before/after: the route as read and as it should be written; rules: the weight report of
each rule in scope; targets: (rule label, BackendKey) of every listed backend the route
still references afterwards (what must exist); problems: why the change is refused.
"""


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_split(backends, rules=None, add_missing=False, remove_zero=False, default_namespace=None):
    """A Split from the module's options; raises MigrationError naming every bad entry."""
    problems = []
    parsed = []
    for position, spec in enumerate(backends or []):
        name, weight = spec.get("name"), spec.get("weight")
        label = "backends[%d] (%s)" % (position, name or "no name")
        if not name:
            problems.append("%s: name is required; give the InferencePool or Service name" % label)
        if not is_int(weight) or not 0 <= weight <= api.MAX_BACKEND_WEIGHT:
            problems.append(
                "%s: weight %r is not an integer from 0 to %d; give a whole number in that range"
                % (label, weight, api.MAX_BACKEND_WEIGHT)
            )
        parsed.append(
            Backend(
                spec.get("group") or api.CORE_GROUP,
                spec.get("kind") or api.GA_POOL.kind,
                spec.get("namespace") or default_namespace,
                name,
                weight,
            )
        )
    if not parsed:
        problems.append("backends is empty: list the backends to weight (e.g. the alpha and the v1 InferencePool)")
    elif not problems and not any(backend.weight > 0 for backend in parsed):
        problems.append(
            "every listed backend has weight 0, which would stop all traffic in the rules they serve; "
            "give at least one of them a positive weight"
        )
    for rule in rules or []:
        if not (is_int(rule) and rule >= 0) and not (isinstance(rule, str) and rule):
            problems.append("rules entry %r is neither a rule name nor a rule index (an integer from 0)" % (rule,))
    if problems:
        raise refusal(problems)
    return Split(tuple(parsed), tuple(rules) if rules else None, add_missing, remove_zero)


def refusal(problems):
    return MigrationError(
        "traffic_split refused, for the reasons below. Nothing was changed.\n- " + "\n- ".join(problems),
        problems=problems
    )


def references_any(route, split):
    """Whether any rule of the route references a listed backend."""
    wanted = split.weights(route["metadata"].get("namespace"))
    return any(key in wanted for rule_index, ref_index, key, weight in refs.route_backends(route))


def _listed_positions(rule, wanted, route_namespace):
    """BackendKey -> positions of the rule's backendRefs that point at a listed backend."""
    positions = {}
    for position, ref in enumerate(rule.get("backendRefs") or []):
        key = refs.backend_key(ref, route_namespace)
        if key in wanted:
            positions.setdefault(key, []).append(position)
    return positions


def _rules_in_scope(route, split, wanted):
    """(indexes of the rules to change, problems)."""
    rules = route.get("spec", {}).get("rules") or []
    namespace = route["metadata"].get("namespace")
    if split.rules is None:
        scope = [i for i, rule in enumerate(rules) if _listed_positions(rule, wanted, namespace)]
        if scope:
            return scope, []
        return [], [
            "%s: no rule references any listed backend (%s); check group, kind, namespace and name of the "
            "listed backends against the route's backendRefs, or leave the route out of routes/route_selector"
            % (route_label(route), ", ".join(str(key) for key in wanted))
        ]
    scope, problems = [], []
    names = dict((rule.get("name"), i) for i, rule in enumerate(rules) if rule.get("name"))
    for wanted_rule in split.rules:
        index = wanted_rule if is_int(wanted_rule) else names.get(wanted_rule)
        if index is None or index >= len(rules):
            problems.append(
                "%s has no rule %r (it has %d rule(s)%s); fix the rules option"
                % (route_label(route), wanted_rule, len(rules),
                   ", named " + ", ".join(sorted(names)) if names else ", none named")
            )
        elif index not in scope:
            scope.append(index)
    return sorted(scope), problems


def _reweighted_refs(rule, wanted, split, route_namespace, where):
    """(the rule's new backendRefs list, problems); listed refs are edited in place."""
    backend_refs = rule.get("backendRefs") or []
    positions = _listed_positions(rule, wanted, route_namespace)
    problems = []
    if not positions:
        return backend_refs, [
            "%s references none of the listed backends, so there is no backendRef to weight or copy filters "
            "from; leave the rule out of the rules option or add one of the backends to it" % where
        ]
    for key, found in positions.items():
        if len(found) > 1:
            problems.append(
                "%s references backend %s %d times; traffic_split weights one backendRef per backend, so merge "
                "them by hand first" % (where, key, len(found))
            )
    # A listed backend at weight 0 is already where it should be when absent, unless add_missing asks for the ref
    # (to prepare a rule for a later shift): rolling back to 0 % on a route that someone put back to the preview
    # pool alone has nothing left to do.
    missing = [key for key in wanted if key not in positions
               and not (wanted[key] == 0 and (split.remove_zero or not split.add_missing))]
    if missing and not split.add_missing:
        problems.extend(
            "%s does not reference backend %s; add it to the rule or set add_missing: true" % (where, key)
            for key in missing
        )
    if split.add_missing:
        problems.extend(
            "%s: cannot add backend %s because a Service backendRef needs a port; add it to the rule by hand"
            % (where, key) for key in missing if key.kind == api.SERVICE.kind and key.group == api.CORE_GROUP
        )
    if problems:
        return backend_refs, problems

    template_position = min(found[0] for found in positions.values())
    result = []
    for position, ref in enumerate(backend_refs):
        weight = wanted.get(refs.backend_key(ref, route_namespace))
        if weight is None:
            result.append(ref)
        elif not _dropped(weight, split):
            # A ref whose weight is already right stays untouched, so an omitted weight of 1 stays omitted.
            if refs.weight_of(ref) != weight:
                ref["weight"] = weight
            result.append(ref)
        if position == template_position:
            result.extend(_added_refs(ref, missing, wanted, route_namespace))
    return result, []


def _dropped(weight, split):
    return weight == 0 and split.remove_zero


def _added_refs(template, missing, wanted, route_namespace):
    for key in missing:
        ref = refs.ref_to(key, route_namespace, wanted[key])
        if "filters" in template:
            ref["filters"] = copy.deepcopy(template["filters"])
        yield ref


def plan_route(route, split):
    """What the route becomes under the split; ``route`` itself is left as it was."""
    namespace = route["metadata"].get("namespace")
    wanted = split.weights(namespace)
    after = copy.deepcopy(route)
    scope, problems = _rules_in_scope(after, split, wanted)
    if len(wanted) < len(split.backends):
        problems.append(
            "%s: some listed backends are the same backend once defaults are applied (group, kind, namespace, "
            "name); list each backend once" % route_label(route)
        )
    rules = after.get("spec", {}).get("rules") or []
    reports, targets = [], []
    for index in scope:
        rule = rules[index]
        where = "%s %s" % (route_label(route), rule_label(index, rule))
        before_weights = rule_weights(rule, namespace)
        new_refs, rule_problems = _reweighted_refs(rule, wanted, split, namespace, where)
        problems.extend(rule_problems)
        if not rule_problems:
            rule["backendRefs"] = new_refs
        reports.append({
            "index": index,
            "name": rule.get("name"),
            "before": before_weights,
            "after": rule_weights(rule, namespace),
        })
        targets.extend((where, key) for key in _listed_positions(rule, wanted, namespace))
    return RoutePlan(namespace, route["metadata"]["name"], route, after, after != route, reports, targets, problems)


def observed_generation(route):
    """The oldest generation any parent has reported Accepted/ResolvedRefs for; None without status."""
    observed = [
        (conditions.find_condition(parent.get("conditions"), condition_type) or {}).get("observedGeneration")
        for parent in (route.get("status") or {}).get("parents") or []
        for condition_type in READY_CONDITIONS
    ]
    return min(observed) if observed and None not in observed else None


def parent_problems(route, generation):
    """Why the route's parents have not yet accepted ``generation``; empty when all have.

    route_parent_problems judges against metadata.generation, which another writer
    may already have moved past ours; what must hold is that our write was seen.
    """
    as_of_our_write = dict(route, metadata=dict(route["metadata"], generation=generation))
    return conditions.route_parent_problems(as_of_our_write, READY_CONDITIONS)


def route_diff(plan):
    """Ansible diff of one route: its rules before and after."""
    label = route_label(plan.before)
    return {
        "before_header": label,
        "after_header": label,
        "before": {"rules": plan.before.get("spec", {}).get("rules") or []},
        "after": {"rules": plan.after.get("spec", {}).get("rules") or []},
    }
