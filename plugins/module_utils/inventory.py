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

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, backup, gke_version, refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import describe
from ansible_collections.inference_gateway.migration.plugins.module_utils.conditions import (
    deployment_available,
    is_true,
)
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

PHASE_NOT_STARTED = "not_started"
PHASE_SIDE_BY_SIDE = "side_by_side"
PHASE_SHIFTING = "shifting"
PHASE_SHIFTED = "shifted"
PHASE_ALPHA_REMOVED = "alpha_removed"
PHASES = (PHASE_NOT_STARTED, PHASE_SIDE_BY_SIDE, PHASE_SHIFTING, PHASE_SHIFTED, PHASE_ALPHA_REMOVED)

POOL_KIND = api.ALPHA_POOL.kind

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
    removed = backup.removed_pools_in_backups(backup_dir, missing_alpha_pools(snapshot)) if backup_dir else {}
    return report(snapshot, namespaces, removed)


def missing_alpha_pools(snapshot):
    """Keys of the preview pools that some HTTPRoute sends traffic to but that do not exist."""
    index = Index(snapshot)
    return sorted(set(
        key for route in index.routes for _rule, _ref, key, weight in refs.route_backends(route)
        if refs.sends_traffic_to_alpha_pool(key, weight) and key not in index.pools
    ))


# --- small readers -------------------------------------------------------------------------


def _namespace(obj):
    return obj["metadata"].get("namespace")


def _name(obj):
    return obj["metadata"]["name"]


def _qualified(obj):
    return "%s/%s" % (_namespace(obj), _name(obj))


def _annotations(obj):
    return obj["metadata"].get("annotations") or {}


def _labels(obj):
    return obj["metadata"].get("labels") or {}


def helm_release(obj):
    """{name, namespace} of the Helm release that owns an object, from Helm's annotations; else None."""
    annotations = _annotations(obj)
    name = annotations.get(api.HELM_RELEASE_NAME_ANNOTATION)
    if not name:
        return None
    return {"name": name, "namespace": annotations.get(api.HELM_RELEASE_NAMESPACE_ANNOTATION) or _namespace(obj)}


# --- CRDs ----------------------------------------------------------------------------------


def crd_manager(crd):
    """"gke" when the platform reconciles the CRD, "helm" when a Helm release owns it, else None."""
    labels, annotations = _labels(crd), _annotations(crd)
    keys = list(labels) + list(annotations)
    if api.PLATFORM_MANAGED_LABEL in labels or any(k.startswith(api.GKE_COMPONENT_KEY_PREFIX) for k in keys):
        return api.MANAGER_GKE
    if api.HELM_RELEASE_NAME_ANNOTATION in annotations or labels.get(api.MANAGED_BY_LABEL) == api.HELM_MANAGED_BY_VALUE:
        return api.MANAGER_HELM
    return None


def crd_summary(crd):
    if crd is None:
        return {"present": False, "served_versions": [], "stored_versions": [], "established": False,
                "bundle_version": None, "managed_by": None}
    return {
        "present": True,
        "served_versions": [v["name"] for v in crd["spec"].get("versions") or [] if v.get("served")],
        "stored_versions": list((crd.get("status") or {}).get("storedVersions") or []),
        "established": is_true((crd.get("status") or {}).get("conditions"), "Established"),
        "bundle_version": _annotations(crd).get(api.CRD_BUNDLE_VERSION_ANNOTATION),
        "managed_by": crd_manager(crd),
    }


def crd_plan(crds, gke_ships_ga_pool_crd):
    """Which CRDs the v1 stack still needs installed, and which present ones the platform owns."""
    install = []
    if not crds[api.GA_POOL.crd_name]["present"] and not gke_ships_ga_pool_crd:
        install.append(api.GA_POOL.crd_name)
    if not crds[api.INFERENCE_OBJECTIVE.crd_name]["present"]:
        install.append(api.INFERENCE_OBJECTIVE.crd_name)
    keep_managed = sorted(name for name, crd in crds.items() if crd["present"] and crd["managed_by"] == api.MANAGER_GKE)
    return {"install": install, "keep_managed": keep_managed}


def model_rewrite_targets_field(crd):
    """How the installed InferenceModelRewrite CRD spells its rule targets (`targets` or `split`); None if unknown."""
    if crd is None:
        return None
    versions = sorted(crd["spec"].get("versions") or [], key=lambda v: not v.get("storage"))
    for version in versions:
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
        rule = _schema_at(schema, ("spec", "rules"))
        fields = ((rule or {}).get("items") or {}).get("properties") or {}
        for field in api.MODEL_REWRITE_TARGET_FIELDS:
            if field in fields:
                return field
    return None


def _schema_at(schema, path):
    for field in path:
        schema = (schema.get("properties") or {}).get(field)
        if schema is None:
            return None
    return schema


# --- pools, endpoint pickers, models -------------------------------------------------------


def extension_ref(alpha_pool):
    """An alpha pool's extensionRef with every default explicit (the port only defaults for a Service)."""
    ref = alpha_pool["spec"].get("extensionRef") or {}
    kind = ref.get("kind") or refs.DEFAULT_KIND
    port = ref.get("portNumber")
    if port is None and kind == refs.DEFAULT_KIND:
        port = api.DEFAULT_EPP_PORT
    return {
        "group": ref.get("group") or api.CORE_GROUP,
        "kind": kind,
        "name": ref.get("name"),
        "port": port,
        "failure_mode": ref.get("failureMode") or api.DEFAULT_FAILURE_MODE,
    }


def endpoint_picker_ref(ga_pool):
    """A v1 pool's endpointPickerRef with defaults explicit; None when it has none (optional from v1.6)."""
    ref = ga_pool["spec"].get("endpointPickerRef")
    if ref is None:
        return None
    return {
        "group": ref.get("group") or api.CORE_GROUP,
        "kind": ref.get("kind") or refs.DEFAULT_KIND,
        "name": ref.get("name"),
        "port": (ref.get("port") or {}).get("number"),
        "failure_mode": ref.get("failureMode") or api.DEFAULT_FAILURE_MODE,
    }


class Index:
    """The snapshot's objects, keyed the ways the joins look them up."""

    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.routes = _sorted(snapshot.routes)
        self.pools = dict((refs.pool_key(p), p) for p in snapshot.alpha_pools + snapshot.ga_pools)
        self.services = dict(((_namespace(s), _name(s)), s) for s in snapshot.services)
        self.deployments_by_namespace = {}
        for deployment in sorted(snapshot.deployments, key=_name):
            self.deployments_by_namespace.setdefault(_namespace(deployment), []).append(deployment)


def epp_status(index, namespace, ref):
    """The endpoint picker behind a pool's EPP reference: its Service, the Deployment serving it, readiness."""
    status = {"service_found": False, "deployment": None, "available_replicas": 0, "ready": False, "args": []}
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
        deployment=_name(deployment),
        available_replicas=(deployment.get("status") or {}).get("availableReplicas") or 0,
        ready=deployment_available(deployment),
        args=list(containers[0].get("args") or []),
    )
    return status


def _deployment_behind(index, service):
    """The Deployment whose pods the Service selects; the one named like the Service wins a tie."""
    selector = service["spec"].get("selector") or {}
    if not selector:
        return None
    matching = [
        d for d in index.deployments_by_namespace.get(_namespace(service), [])
        if _selects(selector, (d["spec"]["template"].get("metadata") or {}).get("labels") or {})
    ]
    matching.sort(key=lambda d: _name(d) != _name(service))
    return matching[0] if matching else None


def _selects(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


def model_pool_key(model):
    pool_ref = model["spec"].get("poolRef") or {}
    return refs.BackendKey(pool_ref.get("group") or api.MODEL_POOL_REF_DEFAULT_GROUP, pool_ref.get("kind") or POOL_KIND,
                           _namespace(model), pool_ref.get("name"))


def model_rewrites(model_name, target_models):
    """Whether serving the model relies on a name rewrite: a target names another model, or traffic is split."""
    return len(target_models) > 1 or any(target["name"] != model_name for target in target_models)


def model_entry(model):
    spec = model["spec"]
    target_models = [dict(target) for target in spec.get("targetModels") or []]
    pool_key = model_pool_key(model)
    return {
        "namespace": _namespace(model),
        "name": _name(model),
        "model_name": spec.get("modelName"),
        "criticality": spec.get("criticality"),
        "target_models": target_models,
        "rewrites": model_rewrites(spec.get("modelName"), target_models),
        "pool_ref": {"group": pool_key.group, "name": pool_key.name},
    }


def objective_entry(objective):
    pool_ref = objective["spec"].get("poolRef") or {}
    return {
        "namespace": _namespace(objective),
        "name": _name(objective),
        "priority": objective["spec"].get("priority"),
        "pool_ref": {"group": pool_ref.get("group") or api.OBJECTIVE_POOL_REF_DEFAULT_GROUP, "name": pool_ref.get("name")},
    }


def model_rewrite_entry(rewrite):
    pool_ref = rewrite["spec"].get("poolRef") or {}
    return {
        "namespace": _namespace(rewrite),
        "name": _name(rewrite),
        "pool_ref": {"group": pool_ref.get("group") or api.OBJECTIVE_POOL_REF_DEFAULT_GROUP, "name": pool_ref.get("name")},
        "rules": rewrite["spec"].get("rules") or [],
    }


# --- routes and phases ---------------------------------------------------------------------


def route_usage(routes, alpha_key, ga_key):
    """The route rules that send to either pool of a pair, with the weight each side gets.

    Returns (routes, weights): routes as [{namespace, name, generation, rules: [{index,
    name, alpha_weight, ga_weight, other_weight}]}], weights as the {alpha, ga} totals.
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
            })
        if used:
            entries.append({"namespace": _namespace(route), "name": _name(route),
                            "generation": route["metadata"].get("generation"), "rules": used})
    return entries, totals


def pool_phase(has_counterpart, weights):
    """Where an alpha pool's migration stands, from whether it has a v1 counterpart and the route weights."""
    if not has_counterpart:
        return PHASE_NOT_STARTED
    if weights["ga"] <= 0:
        return PHASE_SIDE_BY_SIDE
    if weights["alpha"] > 0:
        return PHASE_SHIFTING
    return PHASE_SHIFTED


def migrated_from(ga_pool):
    """The BackendKey of the alpha pool a v1 pool was made from (its annotation), or None."""
    source = _annotations(ga_pool).get(api.MIGRATED_FROM_ANNOTATION)
    if not source:
        return None
    namespace, _separator, name = source.rpartition("/")
    return refs.BackendKey(api.ALPHA_GROUP, POOL_KIND, namespace or _namespace(ga_pool), name)


def counterpart(alpha_pool, ga_pools):
    """The v1 pool in the alpha pool's namespace that selects the same pods, or None.

    A v1 pool annotated as migrated from this alpha pool wins over one that only
    has an equal selector; among equals, the first by name.
    """
    alpha_key = refs.pool_key(alpha_pool)
    selector = alpha_pool["spec"].get("selector") or {}
    candidates = [
        p for p in ga_pools
        if _namespace(p) == _namespace(alpha_pool)
        and (migrated_from(p) == alpha_key or _ga_selector(p) == selector)
    ]
    candidates.sort(key=lambda p: (migrated_from(p) != alpha_key, _name(p)))
    return candidates[0] if candidates else None


def _ga_selector(ga_pool):
    return (ga_pool["spec"].get("selector") or {}).get("matchLabels") or {}


def _sorted(objects):
    return sorted(objects, key=lambda o: (_namespace(o) or "", _name(o)))


def alpha_pool_entry(index, pool, ga_pool, models):
    spec = pool["spec"]
    ga_key = refs.pool_key(ga_pool) if ga_pool else None
    routes, weights = route_usage(index.routes, refs.pool_key(pool), ga_key)
    ref = extension_ref(pool)
    return {
        "namespace": _namespace(pool),
        "name": _name(pool),
        "selector": spec.get("selector") or {},
        "target_port": spec.get("targetPortNumber"),
        "extension_ref": ref,
        "epp": epp_status(index, _namespace(pool), ref),
        "helm_release": helm_release(pool),
        "models": models,
        "routes": routes,
        "ga_counterpart": (
            {"namespace": _namespace(ga_pool), "name": _name(ga_pool), "helm_release": helm_release(ga_pool)}
            if ga_pool else None
        ),
        "phase": pool_phase(ga_pool is not None, weights),
        "weights": weights,
    }


def ga_pool_entry(index, pool, paired):
    """A v1 pool, with the phase of the alpha pool it pairs with, or alpha_removed once that is gone.

    ``paired`` is (alpha pool key, phase) when an alpha pool has this pool as its counterpart.
    """
    key = refs.pool_key(pool)
    source = migrated_from(pool)
    if paired is not None:
        alpha_key, phase = paired
    elif source is not None:
        alpha_key = source
        phase = None if source in index.pools else PHASE_ALPHA_REMOVED
    else:
        alpha_key, phase = None, None
    routes, _weights = route_usage(index.routes, alpha_key, key)
    spec = pool["spec"]
    ref = endpoint_picker_ref(pool)
    return {
        "namespace": key.namespace,
        "name": key.name,
        "selector": _ga_selector(pool),
        "target_ports": [port.get("number") for port in spec.get("targetPorts") or []],
        "endpoint_picker_ref": ref,
        "helm_release": helm_release(pool),
        "migrated_from": _annotations(pool).get(api.MIGRATED_FROM_ANNOTATION),
        "epp": epp_status(index, key.namespace, ref),
        "routes": routes,
        "phase": phase,
    }


def orphans(index, model_entries):
    """InferenceModels whose pool is missing, and route backendRefs to InferencePools that do not exist."""
    orphan_models = [
        m for m in model_entries
        if refs.BackendKey(m["pool_ref"]["group"], POOL_KIND, m["namespace"], m["pool_ref"]["name"]) not in index.pools
    ]
    orphan_routes = [
        {"namespace": _namespace(route), "name": _name(route), "rule": rule_index,
         "backend": {"group": key.group, "kind": key.kind, "namespace": key.namespace, "name": key.name,
                     "weight": weight}}
        for route in index.routes
        for rule_index, _ref_index, key, weight in refs.route_backends(route)
        if _is_pool_ref(key) and key not in index.pools
    ]
    return {"models": orphan_models, "routes": orphan_routes}


def _is_pool_ref(key):
    return key.kind == POOL_KIND and key.group in api.POOL_TYPES


# --- warnings ------------------------------------------------------------------------------


def rewrite_warning(model):
    targets = ", ".join(
        "%s:%s" % (t["name"], t["weight"]) if "weight" in t else t["name"] for t in model["target_models"]
    )
    return (
        "InferenceModel %s/%s serves model name %r through targetModels [%s]: v1.0 has no CRD for a model-name "
        "rewrite or a weighted split, so clients sending %r get 404 after the migration unless something rewrites it "
        "(InferenceModelRewrite from v1.3, the %s header, or body-based routing)"
        % (model["namespace"], model["name"], model["model_name"], targets, model["model_name"],
           api.MODEL_NAME_REWRITE_HEADER)
    )


def criticality_warning(models):
    names = ", ".join("%s/%s (%s)" % (m["namespace"], m["name"], m["criticality"] or "unset") for m in models)
    return (
        "InferenceModels with %s criticality change meaning: v0.5 sheds them under saturation, v1 never sheds "
        "priority >= 0 (%s maps to priority %d by default); map them to a negative priority to stay sheddable: %s"
        % (api.DEFAULT_CRITICALITY, api.DEFAULT_CRITICALITY, api.DEFAULT_PRIORITY_MAP[api.DEFAULT_CRITICALITY], names)
    )


def removed_pool_warning(orphan_ref, removed_entries):
    backend = orphan_ref["backend"]
    rebuilt = [p["backup"] for p in removed_entries
               if (p["namespace"], p["name"]) == (backend["namespace"], backend["name"])]
    return (
        "HTTPRoute %s/%s rule %d sends traffic to preview InferencePool %s/%s, which does not exist: requests on "
        "that rule fail. %s" % (
            orphan_ref["namespace"], orphan_ref["name"], orphan_ref["rule"], backend["namespace"], backend["name"],
            "Backup %s holds it, so simple.yml can finish its migration." % rebuilt[0] if rebuilt else
            "Restore it from a backup (rollback.yml) or point the rule at a v1 pool."
        )
    )


def warnings_for(alpha_entries, ga_entries, model_entries, routes, orphan_routes=(), removed_entries=()):
    warnings = [rewrite_warning(m) for m in model_entries if m["rewrites"]]
    warnings.extend(removed_pool_warning(o, removed_entries) for o in orphan_routes)
    standard = [m for m in model_entries if (m["criticality"] or api.DEFAULT_CRITICALITY) == api.DEFAULT_CRITICALITY]
    if standard:
        warnings.append(criticality_warning(standard))
    for route in _sorted(routes):
        for rule_index, _ref_index, key, _weight in refs.route_backends(route):
            if _is_pool_ref(key) and key.namespace != _namespace(route):
                warnings.append(
                    "HTTPRoute %s rule %d references %s in another namespace: it needs a ReferenceGrant there, and the "
                    "migration must create the v1 pool's grant too" % (_qualified(route), rule_index, key)
                )
    for group, entries in ((api.ALPHA_GROUP, alpha_entries), (api.GA_GROUP, ga_entries)):
        for pool in entries:
            if not pool["routes"]:
                warnings.append("%s InferencePool %s/%s has no HTTPRoute sending it traffic"
                                % (group, pool["namespace"], pool["name"]))
    return warnings


# --- the report ----------------------------------------------------------------------------


def server_facts(version):
    git_version = version.get("gitVersion")
    parsed = gke_version.parse(git_version)
    server = {"git_version": git_version, "major": version.get("major"), "minor": version.get("minor")}
    if version.get("platform"):
        server["platform"] = version["platform"]
    return {
        "server_version": server,
        "gke_version": str(parsed) if parsed else None,
        "is_gke": parsed is not None,
        "gke_ships_ga_pool_crd": gke_version.ships_ga_pool_crd(git_version),
    }


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

    all_models = [model_entry(m) for m in _sorted(snapshot.models)]
    models_by_pool = {}
    for model in all_models:
        pool_ref = model["pool_ref"]
        models_by_pool.setdefault((model["namespace"], pool_ref["group"], pool_ref["name"]), []).append(model)

    all_alpha, all_removed, paired = [], [], {}
    sources = [(pool, None) for pool in _sorted(snapshot.alpha_pools)]
    sources.extend((found.pool, found) for _key, found in sorted((removed or {}).items()))
    for pool, backed_up in sources:
        ga_pool = counterpart(pool, snapshot.ga_pools)
        if backed_up is None:
            entry = alpha_pool_entry(index, pool, ga_pool,
                                     models_by_pool.get((_namespace(pool), api.ALPHA_GROUP, _name(pool)), []))
            all_alpha.append(entry)
        else:
            entry = alpha_pool_entry(index, pool, ga_pool, [model_entry(m) for m in _sorted(backed_up.models)])
            entry["backup"] = backed_up.backup
            all_removed.append(entry)
        if ga_pool is not None:
            paired.setdefault(refs.pool_key(ga_pool), (refs.pool_key(pool), entry["phase"]))
    all_ga = [ga_pool_entry(index, pool, paired.get(refs.pool_key(pool))) for pool in _sorted(snapshot.ga_pools)]
    found_orphans = orphans(index, all_models)

    alpha_pools = [p for p in all_alpha if in_scope(p)]
    removed_alpha_pools = [p for p in all_removed if in_scope(p)]
    orphan_found = dict((kind, [o for o in found if in_scope(o)]) for kind, found in found_orphans.items())
    # A ref of weight 0 to a pool that is gone costs no request: only refs carrying traffic need the migration.
    routes_to_removed_alpha = [o for o in orphan_found["routes"]
                               if o["backend"]["group"] == api.ALPHA_GROUP and o["backend"]["weight"] > 0]
    v1_pools = [p for p in all_ga if in_scope(p)]
    models = [m for m in all_models if in_scope(m)]
    routes = [r for r in index.routes if not namespaces or _namespace(r) in namespaces]
    result = dict(facts)
    result.update(
        crds=crds,
        crd_plan=crd_plan(crds, facts["gke_ships_ga_pool_crd"]),
        alpha_pools=alpha_pools,
        removed_alpha_pools=removed_alpha_pools,
        inference_models=models,
        v1_pools=v1_pools,
        objectives=[o for o in (objective_entry(o) for o in _sorted(snapshot.objectives)) if in_scope(o)],
        model_rewrites=[r for r in (model_rewrite_entry(r) for r in _sorted(snapshot.model_rewrites)) if in_scope(r)],
        model_rewrite_targets_field=model_rewrite_targets_field(snapshot.crds[api.INFERENCE_MODEL_REWRITE.crd_name]),
        orphans=orphan_found,
        migration_needed=bool(alpha_pools or models or routes_to_removed_alpha),
        warnings=warnings_for(alpha_pools, v1_pools, models, routes, routes_to_removed_alpha, removed_alpha_pools),
    )
    result["summary"] = summary(result, routes)
    return result


def summary(result, routes):
    phases = dict((phase, 0) for phase in PHASES)
    for pool in result["alpha_pools"]:
        phases[pool["phase"]] += 1
    phases[PHASE_ALPHA_REMOVED] = sum(1 for p in result["v1_pools"] if p["phase"] == PHASE_ALPHA_REMOVED)
    return {
        "alpha_pools": len(result["alpha_pools"]),
        "removed_alpha_pools": len(result["removed_alpha_pools"]),
        "inference_models": len(result["inference_models"]),
        "v1_pools": len(result["v1_pools"]),
        "objectives": len(result["objectives"]),
        "model_rewrites": len(result["model_rewrites"]),
        "routes_to_alpha": sum(
            1 for r in routes if any(key.group == api.ALPHA_GROUP for _r, _i, key, _w in refs.route_backends(r))
        ),
        "orphan_models": len(result["orphans"]["models"]),
        "orphan_route_refs": len(result["orphans"]["routes"]),
        "phases": phases,
        "warnings": len(result["warnings"]),
    }


def preview_objects(result):
    """Human names of every preview-API object in the result (alpha pools and InferenceModels)."""
    return [describe(api.ALPHA_POOL, p["name"], p["namespace"]) for p in result["alpha_pools"]] + [
        describe(api.INFERENCE_MODEL, m["name"], m["namespace"]) for m in result["inference_models"]
    ]


def refuse_preview_objects(result):
    """Fail like Pluto's exit codes when preview objects exist; the whole result goes with the failure."""
    found = preview_objects(result)
    if found:
        raise MigrationError(
            "%d preview API object(s) found; migrate them to %s before relying on this cluster being preview-free "
            "(or run without fail_on_found to only report): %s" % (len(found), api.GA_POOL.api_version, "; ".join(found)),
            **result
        )
