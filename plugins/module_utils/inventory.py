# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Detection: every preview-API object, how the pools are wired, and where each migration stands.

collect() is the only function here that talks to the cluster. It reads a fixed
number of things whatever the number of namespaces: the server version, the five
inference CRDs by name, and one cluster-wide list per resource type. Everything
after that is pure joins over the plain dicts it returns, so that report() can
be unit-tested with fixtures and the namespace filter costs no API call.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, detect_summary, managers, refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.backup_files import removed_pools_in_backups
from ansible_collections.inference_gateway.migration.plugins.module_utils.conditions import deployment_available
from ansible_collections.inference_gateway.migration.plugins.module_utils.inventory_crds import crd_plan, crd_summary, model_rewrite_targets_field, server_facts
from ansible_collections.inference_gateway.migration.plugins.module_utils.inventory_routes import pool_phase, route_usage
from ansible_collections.inference_gateway.migration.plugins.module_utils.inventory_warnings import warnings_for
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import (
    annotations_of,
    endpoint_picker_ref,
    extension_ref,
    helm_release,
    identity,
    model_pool_key,
    model_rewrites,
    name_of,
    namespace_of,
    qualified,
    sorted_by_name,
)


# Snapshot field -> the resource type listed into it.
LISTED_TYPES = (
    ("alpha_pools", api.ALPHA_POOL),
    ("models", api.INFERENCE_MODEL),
    ("ga_pools", api.GA_POOL),
    ("objectives", api.INFERENCE_OBJECTIVE),
    ("model_rewrites", api.INFERENCE_MODEL_REWRITE),
    ("routes", api.HTTP_ROUTE),
    ("services", api.SERVICE),
    ("deployments", api.DEPLOYMENT),
)


class Snapshot(namedtuple("Snapshot", ["server_version", "crds"] + [field for field, _rtype in LISTED_TYPES])):
    """What collect() read: /version, CRD name -> CRD (or None), and one list per type."""

    __slots__ = ()


def collect(cluster):
    """Read everything detection needs; a type that is not served lists as empty."""
    crds = dict((rtype.crd_name, cluster.get(api.CRD, rtype.crd_name)) for rtype in api.INFERENCE_CRDS)
    listed = dict((field, cluster.list(rtype) or []) for field, rtype in LISTED_TYPES)
    return Snapshot(server_version=cluster.server_version(), crds=crds, **listed)


def detect(cluster, namespaces=None, backup_dir=None):
    """The report; with ``backup_dir``, preview pools that routes still use but that are gone are rebuilt
    from the newest backup there that holds them (see removed_pools_in_backups)."""
    snapshot = collect(cluster)
    removed = removed_pools_in_backups(backup_dir, missing_alpha_pools(snapshot)) if backup_dir else {}
    return report(snapshot, namespaces, removed)


def missing_alpha_pools(snapshot):
    """Keys of the preview pools that some HTTPRoute sends traffic to but that do not exist."""
    index = Index(snapshot)
    return sorted(set(
        key for route in index.routes for _rule, _ref, key, weight in refs.route_backends(route)
        if refs.sends_traffic_to_alpha_pool(key, weight) and key not in index.pools
    ))


# --- pools, endpoint pickers, models -------------------------------------------------------


class Index:
    """The snapshot's objects, keyed the ways the joins look them up: every per-pool join is a lookup, so that
    detection grows with the number of objects, not with pools times routes."""

    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.routes = sorted_by_name(snapshot.routes)
        self.pools = dict((refs.pool_key(p), p) for p in snapshot.alpha_pools + snapshot.ga_pools)
        self.services = dict(((namespace_of(s), name_of(s)), s) for s in snapshot.services)
        self.deployments_by_namespace = _grouped(sorted(snapshot.deployments, key=name_of), namespace_of)
        self.ga_pools_by_namespace = _grouped(sorted_by_name(snapshot.ga_pools), namespace_of)
        self.models_by_pool = _grouped(sorted_by_name(snapshot.models), model_pool_key)
        self._route_positions = {}
        for position, route in enumerate(self.routes):
            for key in set(key for _rule, _ref, key, _weight in refs.route_backends(route)):
                self._route_positions.setdefault(key, []).append(position)

    def routes_to(self, *keys):
        """The routes with a backendRef to any of ``keys`` (None stands for no pool), in name order."""
        positions = set(position for key in keys if key is not None for position in self._route_positions.get(key, ()))
        return [self.routes[position] for position in sorted(positions)]


def _grouped(objects, key):
    groups = {}
    for obj in objects:
        groups.setdefault(key(obj), []).append(obj)
    return groups


def epp_status(index, namespace, ref):
    """The endpoint picker behind a pool's EPP reference: its Service, the Deployment serving it, readiness."""
    status = {"service_found": False, "deployment": None, "available_replicas": 0, "ready": False, "image": None,
              "args": []}
    if ref is None or ref["kind"] != refs.DEFAULT_KIND or ref["group"] != api.CORE_GROUP:
        return status
    service = index.services.get((namespace, ref["name"]))
    if service is None:
        return status
    status["service_found"] = True
    deployment = _deployment_behind(index, service)
    if deployment is None:
        return status
    containers = deployment["spec"]["template"]["spec"].get("containers") or [{}]
    status.update(
        deployment=name_of(deployment),
        available_replicas=(deployment.get("status") or {}).get("availableReplicas") or 0,
        ready=deployment_available(deployment),
        image=containers[0].get("image"),
        args=list(containers[0].get("args") or []),
    )
    return status


def _deployment_behind(index, service):
    """The Deployment whose pods the Service selects; the one named like the Service wins a tie."""
    selector = service["spec"].get("selector") or {}
    if not selector:
        return None
    matching = [
        d for d in index.deployments_by_namespace.get(namespace_of(service), [])
        if _selects(selector, (d["spec"]["template"].get("metadata") or {}).get("labels") or {})
    ]
    matching.sort(key=lambda d: name_of(d) != name_of(service))
    return matching[0] if matching else None


def _selects(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


def model_entry(model):
    spec = model["spec"]
    target_models = [dict(target) for target in spec.get("targetModels") or []]
    pool_key = model_pool_key(model)
    return dict(identity(model), **{
        "namespace": namespace_of(model),
        "name": name_of(model),
        "model_name": spec.get("modelName"),
        "criticality": spec.get("criticality"),
        "target_models": target_models,
        "rewrites": model_rewrites(spec.get("modelName"), target_models),
        "pool_ref": {"group": pool_key.group, "name": pool_key.name},
    })


def objective_entry(objective):
    pool_ref = objective["spec"].get("poolRef") or {}
    return {
        "namespace": namespace_of(objective),
        "name": name_of(objective),
        "priority": objective["spec"].get("priority"),
        "model_name": annotations_of(objective).get(api.MODEL_NAME_ANNOTATION),
        "pool_ref": {"group": pool_ref.get("group") or api.OBJECTIVE_POOL_REF_DEFAULT_GROUP, "name": pool_ref.get("name")},
    }


def model_rewrite_entry(rewrite):
    pool_ref = rewrite["spec"].get("poolRef") or {}
    return {
        "namespace": namespace_of(rewrite),
        "name": name_of(rewrite),
        "pool_ref": {"group": pool_ref.get("group") or api.OBJECTIVE_POOL_REF_DEFAULT_GROUP, "name": pool_ref.get("name")},
        "rules": rewrite["spec"].get("rules") or [],
    }


def migrated_from(ga_pool):
    """The BackendKey of the alpha pool a v1 pool was made from (its annotation), or None."""
    source = annotations_of(ga_pool).get(api.MIGRATED_FROM_ANNOTATION)
    if not source:
        return None
    namespace, _separator, name = source.rpartition("/")
    return refs.BackendKey(api.ALPHA_GROUP, api.ALPHA_POOL.kind, namespace or namespace_of(ga_pool), name)


def counterpart(alpha_pool, ga_pools_by_namespace):
    """The v1 pool in the alpha pool's namespace that selects the same pods, or None.

    A v1 pool annotated as migrated from this alpha pool wins over one that only
    has an equal selector; among equals, the first by name.
    """
    alpha_key = refs.pool_key(alpha_pool)
    selector = alpha_pool["spec"].get("selector") or {}
    candidates = [
        p for p in ga_pools_by_namespace.get(namespace_of(alpha_pool), [])
        if migrated_from(p) == alpha_key or _ga_selector(p) == selector
    ]
    candidates.sort(key=lambda p: (migrated_from(p) != alpha_key, name_of(p)))
    return candidates[0] if candidates else None


def _ga_selector(ga_pool):
    return (ga_pool["spec"].get("selector") or {}).get("matchLabels") or {}


def alpha_pool_entry(index, pool, ga_pool, models):
    spec = pool["spec"]
    ga_key = refs.pool_key(ga_pool) if ga_pool else None
    routes, weights = route_usage(index.routes_to(refs.pool_key(pool), ga_key), refs.pool_key(pool), ga_key)
    ref = extension_ref(pool)
    return dict(identity(pool), **{
        "namespace": namespace_of(pool),
        "name": name_of(pool),
        "selector": spec.get("selector") or {},
        "target_port": spec.get("targetPortNumber"),
        "extension_ref": ref,
        "epp": epp_status(index, namespace_of(pool), ref),
        "helm_release": helm_release(pool),
        "models": models,
        "routes": routes,
        "ga_counterpart": (
            {"namespace": namespace_of(ga_pool), "name": name_of(ga_pool), "helm_release": helm_release(ga_pool)}
            if ga_pool else None
        ),
        "phase": pool_phase(ga_pool is not None, weights),
        "weights": weights,
    })


def ga_pool_entry(index, pool, paired, objectives=()):
    """A v1 pool, with the phase of the alpha pool it pairs with, or alpha_removed once that is gone.

    ``paired`` is (alpha pool key, phase) when an alpha pool has this pool as its counterpart; ``objectives``
    are the objective entries of the pool, reported as its ``models`` (a probe takes a model name from them).
    """
    key = refs.pool_key(pool)
    source = migrated_from(pool)
    if paired is not None:
        alpha_key, phase = paired
    elif source is not None:
        alpha_key = source
        phase = None if source in index.pools else api.PHASE_ALPHA_REMOVED
    else:
        alpha_key, phase = None, None
    routes, _weights = route_usage(index.routes_to(alpha_key, key), alpha_key, key)
    spec = pool["spec"]
    ref = endpoint_picker_ref(pool)
    return {
        "namespace": key.namespace,
        "name": key.name,
        "selector": _ga_selector(pool),
        "target_ports": [port.get("number") for port in spec.get("targetPorts") or []],
        "endpoint_picker_ref": ref,
        "helm_release": helm_release(pool),
        "migrated_from": annotations_of(pool).get(api.MIGRATED_FROM_ANNOTATION),
        "epp": epp_status(index, key.namespace, ref),
        "routes": routes,
        "models": list(objectives),
        "phase": phase,
    }


def orphans(index, model_entries):
    """InferenceModels whose pool is missing, and route backendRefs to InferencePools that do not exist."""
    orphan_models = [
        m for m in model_entries
        if refs.BackendKey(m["pool_ref"]["group"], api.ALPHA_POOL.kind, m["namespace"], m["pool_ref"]["name"]) not in index.pools
    ]
    orphan_routes = [
        {"namespace": namespace_of(route), "name": name_of(route), "rule": rule_index,
         "backend": {"group": key.group, "kind": key.kind, "namespace": key.namespace, "name": key.name,
                     "weight": weight}}
        for route in index.routes
        for rule_index, _ref_index, key, weight in refs.route_backends(route)
        if refs.is_pool(key) and key not in index.pools
    ]
    return {"models": orphan_models, "routes": orphan_routes}


# --- ownership: who else manages what the migration writes or deletes -----------------------


def touched_objects(index, pool, entry, backed_up=False):
    """(kind, object) of everything the migration of one preview pool writes or deletes that exists now:
    the pool and its InferenceModels (unless the pool is gone and read from a backup), the HTTPRoutes
    with a backendRef to it, and its endpoint picker's Service and Deployment."""
    key = refs.pool_key(pool)
    found = []
    if not backed_up:
        found.append((api.ALPHA_POOL.kind, pool))
        found.extend((api.INFERENCE_MODEL.kind, m) for m in index.models_by_pool.get(key, []))
    found.extend((api.HTTP_ROUTE.kind, r) for r in index.routes_to(key))
    service = index.services.get((key.namespace, entry["extension_ref"]["name"]))
    if service is not None and entry["extension_ref"]["kind"] == api.SERVICE.kind:
        found.append((api.SERVICE.kind, service))
    deployment = entry["epp"]["deployment"]
    found.extend((api.DEPLOYMENT.kind, d) for d in index.deployments_by_namespace.get(key.namespace, [])
                 if name_of(d) == deployment)
    return found


def ownership(index, pools):
    """(managed_objects, last_applied) over ``pools``, a list of (raw preview pool, its entry, read from a backup)."""
    return managers.ownership(
        (qualified(entry), kind, obj)
        for pool, entry, backed_up in pools for kind, obj in touched_objects(index, pool, entry, backed_up))


# --- the report ----------------------------------------------------------------------------


def report(snapshot, namespaces=None, removed=None):
    """The detection result (see the module's RETURN) for the whole cluster or the given namespaces.

    Joins run over everything collected, so that a reference across the namespace
    filter is never mistaken for an orphan; only what is reported is filtered.
    ``removed`` maps keys of preview pools that are gone to the RemovedPool a
    backup holds; they are reported as removed_alpha_pools and pair with their
    v1 counterparts as if they still existed.
    """
    def in_scope(obj):
        return not namespaces or obj["namespace"] in namespaces

    index = Index(snapshot)
    facts = server_facts(snapshot.server_version)
    crds = dict((name, crd_summary(crd)) for name, crd in snapshot.crds.items())

    all_models = [model_entry(m) for m in sorted_by_name(snapshot.models)]
    models_by_pool = {}
    for model in all_models:
        pool_ref = model["pool_ref"]
        models_by_pool.setdefault((model["namespace"], pool_ref["group"], pool_ref["name"]), []).append(model)

    all_alpha, all_removed, paired, raw = [], [], {}, []
    sources = [(pool, None) for pool in sorted_by_name(snapshot.alpha_pools)]
    sources.extend((found.pool, found) for _key, found in sorted((removed or {}).items()))
    for pool, backed_up in sources:
        ga_pool = counterpart(pool, index.ga_pools_by_namespace)
        if backed_up is None:
            entry = alpha_pool_entry(index, pool, ga_pool,
                                     models_by_pool.get((namespace_of(pool), api.ALPHA_GROUP, name_of(pool)), []))
            all_alpha.append(entry)
        else:
            entry = alpha_pool_entry(index, pool, ga_pool, [model_entry(m) for m in sorted_by_name(backed_up.models)])
            entry["backup"] = backed_up.backup
            all_removed.append(entry)
        raw.append((pool, entry, backed_up is not None))
        if ga_pool is not None:
            paired.setdefault(refs.pool_key(ga_pool), (refs.pool_key(pool), entry["phase"]))
    all_objectives = [objective_entry(o) for o in sorted_by_name(snapshot.objectives)]
    objectives_by_pool = {}
    for objective in all_objectives:
        pool_ref = objective["pool_ref"]
        objectives_by_pool.setdefault((objective["namespace"], pool_ref["group"], pool_ref["name"]), []).append(objective)
    all_ga = [ga_pool_entry(index, pool, paired.get(refs.pool_key(pool)),
                            objectives_by_pool.get((namespace_of(pool), api.GA_GROUP, name_of(pool)), []))
              for pool in sorted_by_name(snapshot.ga_pools)]
    found_orphans = orphans(index, all_models)

    alpha_pools = [p for p in all_alpha if in_scope(p)]
    removed_alpha_pools = [p for p in all_removed if in_scope(p)]
    orphan_found = dict((kind, [o for o in found if in_scope(o)]) for kind, found in found_orphans.items())
    # A ref of weight 0 to a pool that is gone costs no request: only refs carrying traffic need the migration.
    routes_to_removed_alpha = [o for o in orphan_found["routes"]
                               if o["backend"]["group"] == api.ALPHA_GROUP and o["backend"]["weight"] > 0]
    v1_pools = [p for p in all_ga if in_scope(p)]
    managed_objects, last_applied = ownership(index, [r for r in raw if in_scope(r[1])])
    models = [m for m in all_models if in_scope(m)]
    routes = [r for r in index.routes if not namespaces or namespace_of(r) in namespaces]
    result = dict(facts)
    result.update(
        crds=crds,
        crd_plan=crd_plan(crds, facts["gke_ships_ga_pool_crd"]),
        alpha_pools=alpha_pools,
        removed_alpha_pools=removed_alpha_pools,
        inference_models=models,
        v1_pools=v1_pools,
        objectives=[o for o in all_objectives if in_scope(o)],
        model_rewrites=[r for r in (model_rewrite_entry(r) for r in sorted_by_name(snapshot.model_rewrites)) if in_scope(r)],
        model_rewrite_targets_field=model_rewrite_targets_field(snapshot.crds[api.INFERENCE_MODEL_REWRITE.crd_name]),
        orphans=orphan_found,
        managed_objects=managed_objects,
        last_applied=last_applied,
        migration_needed=bool(alpha_pools or models or routes_to_removed_alpha),
        warnings=warnings_for(alpha_pools, v1_pools, models, routes, routes_to_removed_alpha, removed_alpha_pools),
    )
    result["summary"] = detect_summary.counts(result, routes)
    return result
