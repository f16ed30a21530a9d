# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""traffic_split against a cluster: select, validate everything, write, wait.

Every write is a read-modify-write guarded by resourceVersion. On a conflict the
route is read again and the transform of routes.plan_route is applied to the
fresh copy, so a concurrent writer's edits to anything we do not own survive.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, routes, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError


def select_routes(cluster, split, namespace=None, names=None, selector=None):
    """The live routes traffic_split acts on; raises MigrationError when there are none or one is missing."""
    if names:
        if not namespace:
            raise MigrationError("routes %s are named without a namespace; set namespace" % ", ".join(names))
        found, problems = [], []
        for name in dict.fromkeys(names):
            route = cluster.get(api.HTTP_ROUTE, name, namespace)
            if route is None:
                problems.append("HTTPRoute %s/%s does not exist; fix the routes option or create the route"
                                % (namespace, name))
            else:
                found.append(route)
        if problems:
            raise routes.refusal(problems)
        return found
    listed = cluster.list(api.HTTP_ROUTE, namespace=namespace if selector else None, label_selector=selector)
    if listed is None:
        raise MigrationError("the cluster does not serve %s; install the Gateway API CRDs" % api.HTTP_ROUTE.api_version)
    if selector:
        selected = listed
        where = "with labels %s in %s" % (selector, "namespace %s" % namespace if namespace else "any namespace")
    else:
        selected = [route for route in listed if routes.references_any(route, split)]
        where = "referencing %s" % ", ".join(
            str(backend.key("<route namespace>")) for backend in split.backends)
    if not selected:
        raise MigrationError("no HTTPRoute selected: none exists %s; fix routes, route_selector or backends" % where)
    return selected


def missing_backends(cluster, plans):
    """A problem for every listed backend a route would still reference that does not exist."""
    verdicts, problems = {}, []
    for plan in plans:
        for where, key in plan.targets:
            if key not in verdicts:
                verdicts[key] = _absence(cluster, key)
            if verdicts[key]:
                problems.append("%s: backend %s %s" % (where, key, verdicts[key]))
    return problems


def _absence(cluster, key):
    """Why the backend is unusable, or None when it exists or is of a kind we do not check."""
    if key.kind == api.GA_POOL.kind:
        rtype = api.POOL_TYPES.get(key.group)
        if rtype is None:
            return ("is in no InferencePool group the migration knows (%s); fix its group or set "
                    "validate_backends: false" % ", ".join(sorted(api.POOL_TYPES)))
    elif key.kind == api.SERVICE.kind and key.group == api.CORE_GROUP:
        rtype = api.SERVICE
    else:
        return None
    if cluster.get(rtype, key.name, key.namespace) is None:
        return ("does not exist (%s); create it first (for a pool, install its inferencepool chart), fix the "
                "backend, or set validate_backends: false" % rtype.api_version)
    return None


def write_route(cluster, route, split):
    """Apply the split to one route; return (plan, route as the server returned it).

    ``route`` is the copy the caller planned on; after a conflict the route is read
    again and planned afresh, so only our change is re-applied.
    """
    namespace, name = route["metadata"].get("namespace"), route["metadata"]["name"]
    plans = []

    def read():
        live = cluster.get(api.HTTP_ROUTE, name, namespace)
        if live is None:
            raise MigrationError("HTTPRoute %s/%s was deleted while traffic_split was writing it" % (namespace, name))
        return live

    def change(live):
        plan = routes.plan_route(live, split)
        if plan.problems:
            raise routes.refusal(plan.problems)
        plans.append(plan)
        return plan.after if plan.changed else None

    written = waiting.read_modify_write(read, change, lambda body: cluster.replace(api.HTTP_ROUTE, body),
                                        "HTTPRoute %s/%s" % (namespace, name), live=route)
    return plans[-1], written.before if written.stored is None else written.stored


def wait_ready(cluster, namespace, name, generation, timeout, interval=waiting.POLL_SECONDS, clock=time.monotonic,
               sleep=time.sleep):
    """Poll until every parent accepted the route at ``generation``; return the route last read."""
    def read():
        route = cluster.get(api.HTTP_ROUTE, name, namespace)
        if route is None:
            raise MigrationError("HTTPRoute %s/%s disappeared while waiting for its status" % (namespace, name))
        return route, routes.parent_problems(route, generation)

    polled = waiting.poll(read, lambda seen: not seen[1], timeout, interval, clock=clock, sleep=sleep)
    route, problems = polled.value
    if not polled.done:
        raise MigrationError(
            "HTTPRoute %s/%s is not ready at generation %s within wait_timeout; last conditions seen:\n- %s"
            % (namespace, name, generation, "\n- ".join(problems)),
            problems=problems,
        )
    return route


def split_traffic(cluster, splits, namespace=None, names=None, selector=None, validate_backends=True,
                  wait=True, wait_timeout=waiting.DEFAULT_TIMEOUT, wait_sleep=waiting.POLL_SECONDS, diff=False,
                  clock=time.monotonic, sleep=time.sleep):
    """Select and validate the routes of every split, write the changed ones split after split, wait; return the
    module result.

    A route that several splits select (pools that share a route) is written by each in turn, each on the copy the
    previous write stored, so one task moves many pools with no conflict between its own writes.
    """
    planned = []
    for split in splits:
        selected = select_routes(cluster, split, namespace, names, selector)
        planned.append((split, [routes.plan_route(route, split) for route in selected]))
    plans = [plan for dummy, split_plans in planned for plan in split_plans]
    problems = [problem for plan in plans for problem in plan.problems]
    if validate_backends:
        problems.extend(missing_backends(cluster, plans))
    if problems:
        raise routes.refusal(problems)

    outcomes, stored_by_route = [], {}
    for split, split_plans in planned:
        for plan in split_plans:
            key = (plan.namespace, plan.name)
            # A dry run stores nothing: each split is shown against the live route.
            if key in stored_by_route and not cluster.dry_run:
                plan = routes.plan_route(stored_by_route[key], split)
                if plan.problems:
                    raise routes.refusal(plan.problems)
            if plan.changed:
                plan, stored_by_route[key] = write_route(cluster, plan.before, split)
            outcomes.append((plan, stored_by_route[key] if plan.changed else plan.before))
    final_plans = [plan for plan, stored in outcomes]

    # One deadline for all routes: wait_timeout bounds the whole wait, not each route's.
    deadline = clock() + wait_timeout
    results = []
    for plan, stored in outcomes:
        # A dry run's answer shows a generation that was never stored.
        current = plan.before if cluster.dry_run else stored
        generation = current["metadata"].get("generation")
        if wait and not (cluster.dry_run and plan.changed):
            current = wait_ready(cluster, plan.namespace, plan.name, generation, max(0, deadline - clock()),
                                 wait_sleep, clock=clock, sleep=sleep)
        results.append({
            "namespace": plan.namespace,
            "name": plan.name,
            "changed": plan.changed,
            "generation": generation,
            "observed_generation": routes.observed_generation(current),
            "rules": plan.rules,
        })
    result = {"changed": any(plan.changed for plan in final_plans), "routes": results}
    if diff:
        result["diff"] = [routes.route_diff(plan) for plan in final_plans if plan.changed]
    return result
