"""The cluster as the simulated load balancer knows it, and the programming delay.

A Snapshot keeps only what affects routing, so two polls of an unchanged cluster
compare equal even though resourceVersions and status fields (including the status
this gateway writes) move on. DelayLine holds each changed snapshot back until it
is `delay` seconds old, which is how GKE's programming delay is simulated.
"""

import functools
from dataclasses import dataclass

from . import api

POOL_KEYS = {group: f"inferencepools.{group}" for group in api.POOL_VERSIONS}
KEYS = ("gatewayclasses", "gateways", "httproutes", "referencegrants", "inferencemodels", "services", "deployments",
        "pods", *POOL_KEYS.values())

_KEPT_METADATA = ("name", "namespace", "uid", "generation", "creationTimestamp", "labels", "deletionTimestamp")


def _metadata(obj):
    meta = obj.get("metadata", {})
    return {key: meta[key] for key in _KEPT_METADATA if key in meta}


def _containers(pod_spec):
    return [{"name": c.get("name"), "command": c.get("command", []), "args": c.get("args", []),
             "ports": [{"name": p.get("name"), "containerPort": p.get("containerPort")} for p in c.get("ports", [])]}
            for c in pod_spec.get("containers", [])]


def pod_is_ready(pod):
    status = pod.get("status", {})
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
    return status.get("phase") == "Running" and ready and not pod["metadata"].get("deletionTimestamp")


def _normalize(key, obj):
    spec = obj.get("spec", {})
    normalized = {"metadata": _metadata(obj)}
    if key == "pods":
        normalized["spec"] = {"containers": _containers(spec)}
        normalized["ready"] = pod_is_ready(obj)
        normalized["ip"] = obj.get("status", {}).get("podIP")
    elif key == "deployments":
        template = spec.get("template", {})
        normalized["spec"] = {"template": {
            "metadata": {"labels": template.get("metadata", {}).get("labels", {})},
            "spec": {"containers": _containers(template.get("spec", {}))}}}
        normalized["availableReplicas"] = obj.get("status", {}).get("availableReplicas", 0)
    elif key == "services":
        normalized["spec"] = {"selector": spec.get("selector") or {},
                              "ports": [{"name": p.get("name"), "port": p.get("port"),
                                         "targetPort": p.get("targetPort", p.get("port"))}
                                        for p in spec.get("ports", [])]}
    else:
        normalized["spec"] = spec
    return normalized


def _ns_name(obj):
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def labels_match(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


@dataclass(frozen=True)
class Snapshot:
    """Normalised objects per KEYS entry; None for a kind the API server does not serve."""

    objects: dict

    @classmethod
    def from_listings(cls, listings):
        """`listings` maps each KEYS entry to the raw items of a list call, or None on 404."""
        objects = {}
        for key in KEYS:
            items = listings.get(key)
            objects[key] = None if items is None else tuple(
                sorted((_normalize(key, item) for item in items), key=_ns_name))
        return cls(objects)

    def served(self, key):
        return self.objects.get(key) is not None

    def items(self, key):
        return self.objects.get(key) or ()

    @functools.cached_property
    def _by_name(self):
        return {key: {_ns_name(obj): obj for obj in self.items(key)} for key in KEYS}

    def get(self, key, namespace, name):
        return self._by_name[key].get((namespace, name))

    def gateway_class(self, name):
        return self._by_name["gatewayclasses"].get(("", name))

    def pool(self, group, namespace, name):
        return self.get(POOL_KEYS[group], namespace, name)

    def in_namespace(self, key, namespace):
        return [obj for obj in self.items(key) if obj["metadata"].get("namespace") == namespace]

    def reference_granted(self, route_namespace, group, kind, namespace, name):
        """Whether a ReferenceGrant in `namespace` lets HTTPRoutes of `route_namespace` refer to the object."""
        return any(
            any(source.get("group") == api.GATEWAY_GROUP and source.get("kind") == api.HTTPROUTE_KIND
                and source.get("namespace") == route_namespace for source in grant["spec"].get("from") or [])
            and any(target.get("group", "") == group and target.get("kind") == kind
                    and target.get("name") in (None, name) for target in grant["spec"].get("to") or [])
            for grant in self.in_namespace("referencegrants", namespace))


class DelayLine:
    """Changed snapshots become active only once their programming delay has passed.

    Every change is queued with the time it was first seen plus its own delay: `delay` is
    seconds (every change the same) or a function drawing one delay per change (see
    delay.ProgrammingDelay). With one fixed delay a quick sequence of changes is replayed in
    order, each `delay` later, as a load balancer that programs its data plane in the
    background would. With a delay per change, a later change can be ready before an earlier
    one; then, as GKE reconciles towards the newest spec, the newest ready change wins and the
    older changes still in flight are dropped, never activated afterwards: what is active (and
    the observedGeneration status reports) never goes back to an older generation.
    """

    def __init__(self, delay, initial):
        self._draw = delay if callable(delay) else (lambda: delay)
        self.active = initial
        self._latest = initial
        self._pending = []  # (ready at, snapshot), in the order the changes were seen

    def observe(self, now, snapshot):
        """Queue a change; returns its delay, or None when nothing changed."""
        if snapshot == self._latest:
            return None
        delay = self._draw()
        self._pending.append((now + delay, snapshot))
        self._latest = snapshot
        return delay

    def advance(self, now):
        """Activate the newest queued snapshot that is ready, dropping the older ones; True when the active one changed."""
        previous = self.active
        ready = [index for index, (ready_at, _snapshot) in enumerate(self._pending) if ready_at <= now]
        if ready:
            self.active = self._pending[ready[-1]][1]
            del self._pending[:ready[-1] + 1]
        return self.active != previous
