"""HTTPRoute matching with Gateway API precedence, weighted backend choice, header filters."""

import re
from dataclasses import dataclass

from .topology import hostnames_intersect

DEFAULT_PATH = {"type": "PathPrefix", "value": "/"}
_PATH_RANK = {"Exact": 0, "PathPrefix": 1, "RegularExpression": 2}


@dataclass(frozen=True)
class WeightedBackend:
    weight: int
    backend: object  # backends.PoolBackend | backends.ServiceBackend | backends.Failure
    filters: tuple


@dataclass(frozen=True)
class Rule:
    route: tuple  # (namespace, name)
    index: int
    backends: tuple
    filters: tuple


@dataclass(frozen=True)
class Candidate:
    """One match of one rule, as attached to one listener."""

    match: dict
    hostnames: tuple
    listener_hostname: str | None
    rule: Rule
    precedence: tuple


def precedence_key(match, route_age, rule_index, match_index):
    """Gateway API order: Exact path, longest prefix, method, most headers, most query params,
    then oldest route, route "namespace/name", and list order inside the route.
    (Regular-expression paths are implementation-specific; here they come last.)"""
    path = match.get("path", DEFAULT_PATH)
    path_type = path.get("type", "PathPrefix")
    return (_PATH_RANK[path_type], -len(path.get("value", "/")) if path_type == "PathPrefix" else 0,
            0 if "method" in match else 1, -len(match.get("headers", [])), -len(match.get("queryParams", [])),
            route_age, rule_index, match_index)


def path_matches(path_match, path):
    kind, value = path_match.get("type", "PathPrefix"), path_match.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "RegularExpression":
        return re.fullmatch(value, path) is not None
    prefix = value.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _value_matches(spec, actual):
    if actual is None:
        return False
    if spec.get("type", "Exact") == "RegularExpression":
        return re.fullmatch(spec["value"], actual) is not None
    return actual == spec["value"]


def request_matches(match, method, path, query, headers):
    """headers: lower-case name -> value; query: name -> first value."""
    return (path_matches(match.get("path", DEFAULT_PATH), path)
            and match.get("method", method) == method
            and all(_value_matches(h, headers.get(h["name"].lower())) for h in match.get("headers", []))
            and all(_value_matches(q, query.get(q["name"])) for q in match.get("queryParams", [])))


def hostname_score(pattern, host):
    """How specifically `pattern` matches `host`: exact beats longer wildcard beats shorter; None = no match."""
    if pattern is None:
        return (0, 0)
    if pattern.startswith("*."):
        return (1, len(pattern)) if host.endswith(pattern[1:]) else None
    return (2, len(pattern)) if host == pattern.lower() else None


def _candidate_score(candidate, host):
    listener_score = hostname_score(candidate.listener_hostname, host)
    if listener_score is None:
        return None
    if not candidate.hostnames:
        return listener_score
    scores = [hostname_score(h, host) for h in candidate.hostnames
              if not candidate.listener_hostname or hostnames_intersect(candidate.listener_hostname, h)]
    return max((s for s in scores if s is not None), default=None)


def select(candidates, host, method, path, query, headers):
    """The winning Candidate for a request, or None. `candidates` are sorted by precedence;
    the most specific hostname match is preferred before rule precedence applies."""
    best, best_score = None, None
    for candidate in candidates:
        score = _candidate_score(candidate, host)
        if score is None or (best_score is not None and score <= best_score):
            continue
        if request_matches(candidate.match, method, path, query, headers):
            best, best_score = candidate, score
    return best


def choose_weighted(weighted, rng):
    """A WeightedBackend drawn in proportion to weight; weight 0 is never chosen; None if all are 0."""
    total = sum(item.weight for item in weighted)
    if total <= 0:
        return None
    value = rng.randrange(total)
    for item in weighted:
        if value < item.weight:
            return item
        value -= item.weight
    raise AssertionError("unreachable: value is below the total weight")


def apply_header_filters(filters, headers):
    """Apply RequestHeaderModifier filters to a lower-case header dict, in place.
    Other filter types are not simulated (see docs/sandbox.md)."""
    for spec in filters:
        if spec.get("type") != "RequestHeaderModifier":
            continue
        modifier = spec.get("requestHeaderModifier", {})
        for header in modifier.get("set", []):
            headers[header["name"].lower()] = header["value"]
        for header in modifier.get("add", []):
            name = header["name"].lower()
            headers[name] = f"{headers[name]},{header['value']}" if name in headers else header["value"]
        for name in modifier.get("remove", []):
            headers.pop(name.lower(), None)
