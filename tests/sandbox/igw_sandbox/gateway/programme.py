"""Compile a snapshot into what the load balancer is programmed with.

The same Programme drives the data plane (route tables per listening address and port, model
servers to run) and the status the controller reports (route attachment, unresolved refs,
which pools hang under which Gateway), so what status says is what traffic gets.
"""

from dataclasses import dataclass

from . import api, backends, routing, topology
from .snapshot import POOL_KEYS


@dataclass(frozen=True)
class Programme:
    snapshot: object
    gateways: dict  # (namespace, name) -> Gateway, oldest first
    addresses: dict  # gateway key -> its address, None when none is left
    endpoints: dict  # (address, port) -> gateway key
    attachments: dict  # route key -> [ParentResult]
    ref_problems: dict  # route key -> [RefProblem]
    tables: dict  # (address, port) -> tuple of routing.Candidate in precedence order
    pool_parents: dict  # (group, namespace, name) -> set of gateway keys

    def routes_attached(self, gateway_key, listener_name):
        return sum(1 for results in self.attachments.values() for result in results
                   if result.accepted and result.gateway == gateway_key
                   and any(listener.name == listener_name for listener in result.listeners))


def _compile_rules(snapshot, route):
    namespace = route["metadata"]["namespace"]
    rules, problems, pools = [], [], set()
    for index, rule in enumerate(route["spec"].get("rules", [])):
        weighted = []
        for ref in rule.get("backendRefs", []):
            problem, backend = backends.resolve(snapshot, namespace, ref)
            if problem:
                problems.append(problem)
            weighted.append(routing.WeightedBackend(ref.get("weight", 1), backend, tuple(ref.get("filters", []))))
            group = ref.get("group", "")
            if ref.get("kind") == api.POOL_KIND and group in POOL_KEYS and \
                    snapshot.pool(group, ref.get("namespace", namespace), ref["name"]):
                pools.add((group, ref.get("namespace", namespace), ref["name"]))
        rules.append(routing.Rule(topology.key_of(route), index, tuple(weighted), tuple(rule.get("filters", []))))
    return rules, problems, pools


def _candidates(route, rules, listener):
    age = (route["metadata"].get("creationTimestamp", ""), "/".join(topology.key_of(route)))
    hostnames = tuple(route["spec"].get("hostnames") or ())
    for rule, spec in zip(rules, route["spec"].get("rules", [])):
        for match_index, match in enumerate(spec.get("matches") or [{}]):
            yield routing.Candidate(match, hostnames, listener.hostname, rule,
                                    routing.precedence_key(match, age, rule.index, match_index))


def build(snapshot, base_address, previous_addresses=None):
    """The Programme of `snapshot`; each Gateway keeps the address it had in `previous_addresses` (the last
    Programme's `addresses`), and a new one gets a free address next to `base_address`."""
    gateways = {topology.key_of(g): g for g in topology.our_gateways(snapshot)}
    addresses = topology.gateway_addresses(list(gateways), base_address, previous_addresses)
    endpoints = topology.listener_endpoints(gateways.values(), addresses)
    attachments, ref_problems, pool_parents, candidates = {}, {}, {}, {}
    for route in snapshot.items("httproutes"):
        key = topology.key_of(route)
        results = topology.attach(route, gateways)
        if not results:
            continue
        attachments[key] = results
        rules, ref_problems[key], pools = _compile_rules(snapshot, route)
        for result in results:
            if not result.accepted:
                continue
            for pool in pools:
                pool_parents.setdefault(pool, set()).add(result.gateway)
            for listener in result.listeners:
                endpoint = (addresses.get(listener.gateway), listener.port)
                if endpoint in endpoints:
                    candidates.setdefault(endpoint, []).extend(_candidates(route, rules, listener))
    tables = {endpoint: tuple(sorted(found, key=lambda c: c.precedence)) for endpoint, found in candidates.items()}
    for endpoint in endpoints:
        tables.setdefault(endpoint, ())
    return Programme(snapshot, gateways, addresses, endpoints, attachments, ref_problems, tables, pool_parents)
