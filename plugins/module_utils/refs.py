# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""HTTPRoute backendRefs with the Gateway API defaults made explicit.

A backendRef that omits ``group`` means the core group, one that omits ``kind``
means Service, one that omits ``weight`` means 1, one that omits ``namespace``
means the route's namespace. Comparing refs without normalising first confuses
the two InferencePools of the same name in the two API groups and makes
idempotence checks report changes that are not there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

from ansible_collections.inference_gateway.migration.plugins.module_utils import api

DEFAULT_KIND = "Service"
DEFAULT_WEIGHT = 1


class BackendKey(namedtuple("BackendKey", ["group", "kind", "namespace", "name"])):
    """What a backendRef points at, defaults applied."""

    __slots__ = ()

    def __str__(self):
        group = self.group or "core"
        return "%s %s %s/%s" % (group, self.kind, self.namespace, self.name)


def backend_key(ref, route_namespace):
    """The normalised target of a backendRef (or of a user-given backend spec)."""
    return BackendKey(
        ref.get("group") or api.CORE_GROUP,
        ref.get("kind") or DEFAULT_KIND,
        ref.get("namespace") or route_namespace,
        ref["name"],
    )


def ref_to(key, route_namespace, weight):
    """A new backendRef to ``key``, spelled out except for a namespace the route implies."""
    ref = {"group": key.group, "kind": key.kind, "name": key.name}
    if key.namespace != route_namespace:
        ref["namespace"] = key.namespace
    ref["weight"] = weight
    return ref


def weight_of(ref):
    weight = ref.get("weight")
    return DEFAULT_WEIGHT if weight is None else weight


def sends_traffic_to_alpha_pool(key, weight):
    """Whether a backendRef (normalised) sends requests to a preview InferencePool: weight 0 sends none."""
    return key.group == api.ALPHA_GROUP and key.kind == api.ALPHA_POOL.kind and weight > 0


def pool_key(pool):
    """The BackendKey a route uses to reach this InferencePool object."""
    group = pool["apiVersion"].split("/")[0]
    metadata = pool["metadata"]
    return BackendKey(group, api.GA_POOL.kind, metadata.get("namespace"), metadata["name"])


def is_pool(key):
    """Whether a normalised backendRef points at an InferencePool of either group."""
    return key.group in api.POOL_TYPES and key.kind == api.POOL_TYPES[key.group].kind


def route_backends(route):
    """Yield (rule_index, ref_index, BackendKey, weight) for every backendRef of a route."""
    namespace = route["metadata"].get("namespace")
    for rule_index, rule in enumerate(route.get("spec", {}).get("rules") or []):
        for ref_index, ref in enumerate(rule.get("backendRefs") or []):
            yield rule_index, ref_index, backend_key(ref, namespace), weight_of(ref)


def grant_entry_allows(entry, group, kind, name=None):
    """Whether a ReferenceGrant ``to`` entry allows references to ``kind`` objects of ``group`` named ``name``
    (an entry without a name allows every name; ``name`` None asks for every name)."""
    return (entry.get("group") == group and entry.get("kind") == kind
            and (not entry.get("name") or entry.get("name") == name))
