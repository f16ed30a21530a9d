"""Which Gateways are ours, which ports they get, and which routes attach to them."""

from dataclasses import dataclass

from . import api


@dataclass(frozen=True)
class Listener:
    gateway: tuple  # (namespace, name)
    name: str
    port: int
    protocol: str
    hostname: str | None
    allowed_namespaces: str
    allowed_kinds: tuple

    def admits(self, route_namespace):
        if api.HTTPROUTE_KIND not in self.allowed_kinds or self.protocol != "HTTP":
            return False
        if self.allowed_namespaces == "All":
            return True
        # "Selector" needs namespace labels, which the sandbox does not track: see docs/sandbox.md.
        return self.allowed_namespaces == "Same" and route_namespace == self.gateway[0]


@dataclass(frozen=True)
class ParentResult:
    """One parentRef of a route, resolved against a Gateway of ours."""

    parent_ref: dict
    gateway: tuple
    accepted: bool
    reason: str
    message: str
    listeners: tuple


def key_of(obj):
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def age_key(obj):
    return obj["metadata"].get("creationTimestamp", ""), *key_of(obj)


def our_gateways(snapshot):
    """Gateways of a GatewayClass handled by the GKE controller, oldest first."""
    ours = []
    for gateway in snapshot.items("gateways"):
        gateway_class = snapshot.gateway_class(gateway["spec"].get("gatewayClassName", ""))
        if gateway_class and gateway_class["spec"].get("controllerName") == api.CONTROLLER_NAME:
            ours.append(gateway)
    return sorted(ours, key=age_key)


def listeners_of(gateway):
    result = []
    for listener in gateway["spec"].get("listeners", []):
        allowed = listener.get("allowedRoutes", {})
        kinds = tuple(k["kind"] for k in allowed.get("kinds", [])
                      if k.get("group", api.GATEWAY_GROUP) == api.GATEWAY_GROUP) or (api.HTTPROUTE_KIND,)
        result.append(Listener(gateway=key_of(gateway), name=listener["name"], port=listener["port"],
                               protocol=listener["protocol"], hostname=listener.get("hostname"),
                               allowed_namespaces=allowed.get("namespaces", {}).get("from", "Same"),
                               allowed_kinds=kinds))
    return result


def gateway_addresses(gateway_keys, base_address, previous=None):
    """Gateway key -> an address of its own in the /24 of the sandbox's `base_address`, as GKE gives every
    Gateway one. A Gateway keeps the address it had (`previous`); a new one, taken in the order given (oldest
    first), gets the lowest free host, so the oldest Gateway of a fresh sandbox has `base_address` itself.
    None when the /24 is used up."""
    prefix = base_address.rsplit(".", 1)[0]
    kept = {key: address for key, address in (previous or {}).items() if key in gateway_keys}
    free = (address for address in (f"{prefix}.{host}" for host in range(1, 255)) if address not in kept.values())
    return {key: kept[key] if key in kept else next(free, None) for key in gateway_keys}


def listener_endpoints(gateways, addresses):
    """(address, port) -> gateway key, for every listener of a Gateway that has an address. Listeners of one
    Gateway on the same port share it (they differ by hostname)."""
    return {(addresses[listener.gateway], listener.port): listener.gateway
            for gateway in gateways for listener in listeners_of(gateway) if addresses.get(listener.gateway)}


def hostnames_intersect(first, second):
    if first.startswith("*.") and second.startswith("*."):
        return first.endswith(second[1:]) or second.endswith(first[1:])
    if first.startswith("*."):
        return second.endswith(first[1:])
    if second.startswith("*."):
        return first.endswith(second[1:])
    return first == second


def _hostname_fits(listener, route):
    hostnames = route["spec"].get("hostnames") or []
    return not listener.hostname or not hostnames or any(
        hostnames_intersect(listener.hostname, h) for h in hostnames)


def attach(route, gateways_by_key):
    """ParentResults for the parentRefs of `route` that name one of our Gateways."""
    route_namespace = route["metadata"]["namespace"]
    results = []
    for ref in route["spec"].get("parentRefs", []):
        if ref.get("group", api.GATEWAY_GROUP) != api.GATEWAY_GROUP or ref.get("kind", api.GATEWAY_KIND) != api.GATEWAY_KIND:
            continue
        gateway_key = (ref.get("namespace", route_namespace), ref["name"])
        gateway = gateways_by_key.get(gateway_key)
        if gateway is None:
            continue
        candidates = [listener for listener in listeners_of(gateway)
                      if ref.get("sectionName") in (None, listener.name) and ref.get("port") in (None, listener.port)]
        admitted = [listener for listener in candidates if listener.admits(route_namespace)]
        fitting = tuple(listener for listener in admitted if _hostname_fits(listener, route))
        if not candidates:
            outcome = (False, "NoMatchingParent", "no listener matches the parentRef's sectionName/port")
        elif not admitted:
            outcome = (False, "NotAllowedByListeners", "no matching listener allows this route")
        elif not fitting:
            outcome = (False, "NoMatchingListenerHostname", "no listener hostname intersects the route's hostnames")
        else:
            outcome = (True, "Accepted", "Accepted")
        results.append(ParentResult(ref, gateway_key, *outcome, fitting if outcome[0] else ()))
    return results
