# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Planning decisions of the migration roles, as plain functions over detect results.

The roles call these through filter plugins, so that what the runbook decides
(which pools, which steps are still to do, which weights a step writes, where a
rollback returns) is unit-tested without a cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, convert, convert_models, epp_manifests, managers, probe, releases
from ansible_collections.inference_gateway.migration.plugins.module_utils.preview_removal import stack_refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import distinct_refs, lookup_ref, object_stub, qualified, split_qualified

FULL = 100


def select_pools(detect, wanted=None):
    """The preview pools to migrate: all of them, or those named namespace/name in ``wanted``.

    Preview pools that are gone but that a backup holds (``removed_alpha_pools``) count: a run
    interrupted after removing them is finished from the backup.
    """
    pools = selectable_pools(detect)
    if not wanted:
        return pools
    by_name = dict((qualified(p), p) for p in pools)
    missing = missing_pools(detect, wanted)
    if missing:
        raise MigrationError(
            "No preview InferencePool named %s exists (found: %s). Correct the pool list (namespace/name)."
            % (", ".join(missing), ", ".join(sorted(by_name)) or "none")
        )
    return [by_name[w] for w in wanted]


def selectable_pools(detect):
    """The preview pools a migration can choose: those of the cluster and those gone that a backup holds."""
    return (detect.get("alpha_pools") or []) + (detect.get("removed_alpha_pools") or [])


def missing_pools(detect, wanted):
    """The namespace/name entries of ``wanted`` that name no preview pool select_pools could choose."""
    found = set(qualified(p) for p in selectable_pools(detect))
    return [w for w in wanted or [] if w not in found]


def finished_pools(detect, wanted=None):
    """v1 pools whose preview pool is already gone (a run interrupted after removing it)."""
    done = [p for p in detect.get("v1_pools") or [] if p.get("phase") == api.PHASE_ALPHA_REMOVED]
    if wanted:
        done = [p for p in done if p.get("migrated_from") in wanted]
    return done


def finished_pairs(finished):
    """Pool pairs (as the ga_stack role returns them) for v1 pools whose preview pool is already gone."""
    return [
        {"alpha": pool["migrated_from"], "v1": qualified(pool),
         "epp_deployment": (pool.get("epp") or {}).get("deployment")}
        for pool in finished
    ]


def routes_to_missing_alpha(detect, wanted=None):
    """Route rules that send traffic (weight above 0) to a preview pool that is gone and that no backup brought back,
    as readable strings; with ``wanted`` (namespace/name), only rules sending traffic to those pools."""
    removed = set(qualified(p) for p in detect.get("removed_alpha_pools") or [])
    found = []
    for orphan in (detect.get("orphans") or {}).get("routes") or []:
        backend = orphan["backend"]
        target = qualified(backend)
        if (backend["group"] != api.ALPHA_GROUP or not backend["weight"] or target in removed
                or (wanted and target not in wanted)):
            continue
        found.append("HTTPRoute %s rule %d -> %s" % (qualified(orphan), orphan["rule"], describe_pool(backend)))
    return found


def _touching(entries, pools):
    wanted = set(qualified(p) for p in pools)
    return [e for e in entries or [] if wanted.intersection(e.get("pools") or [])]


def unacknowledged_managers(detect, pools, accept=False):
    """Objects the migration of ``pools`` touches that a manager manages which ``accept`` does not acknowledge,
    one readable line each: the object, each such manager with its evidence, and what to do first.

    ``accept`` is migration_accept_managed_objects: true for every manager, or a list of manager names.
    """
    accepted = set(managers.accepted_managers(accept))
    found = []
    for entry in _touching(detect.get("managed_objects"), pools):
        left = [m for m in entry["managers"] if m["name"] not in accepted]
        if left:
            found.append("%s %s/%s is managed by %s" % (
                entry["kind"], entry["namespace"], entry["name"],
                "; and by ".join("%s [%s] (%s): %s" % (m["by"], m["name"], m["evidence"], m["fix"]) for m in left)))
    return found


def last_applied_objects(detect, pools):
    """Objects the migration of ``pools`` touches whose last kubectl-applied manifest names a preview pool, one line each."""
    return ["%s %s/%s was last written with kubectl apply naming preview pool %s: %s" % (
        e["kind"], e["namespace"], e["name"], ", ".join(e["names"]), e["fix"]) for e in _touching(detect.get("last_applied"), pools)]


def remaining_alpha(detect, pools):
    """Which of the migrated preview pools, or InferenceModels pointing at them, still exist.

    ``pools`` are the detect entries read before the removal. An object whose uid is not the one read then was
    created again after this run deleted it (GitOps self-heal, a controller): it says when and, from its
    managedFields, by whom.
    """
    wanted = set(qualified(p) for p in pools)
    # A pool and an InferenceModel may share a namespace/name (the estate's embed): each kind has its own uids.
    pools_before = dict((qualified(pool), pool.get("uid")) for pool in pools)
    models_before = dict((qualified(model), model.get("uid")) for pool in pools for model in pool.get("models") or [])
    left = [describe_pool(p) + _created_since(p, pools_before) for p in detect.get("alpha_pools") or []
            if qualified(p) in wanted]
    for model in detect.get("inference_models") or []:
        pool_ref = model.get("pool_ref") or {}
        if pool_ref.get("group") == api.ALPHA_GROUP and "%s/%s" % (model["namespace"], pool_ref.get("name")) in wanted:
            left.append("%s %s/%s%s" % (api.INFERENCE_MODEL.kind, model["namespace"], model["name"],
                                        _created_since(model, models_before)))
    return left


def _created_since(entry, read_before):
    """Why ``entry`` is new, given ``read_before`` (namespace/name -> uid of the objects of its kind read before)."""
    uid, name = entry.get("uid"), qualified(entry)
    if not uid or (name in read_before and read_before[name] in (uid, None)):
        return ""
    when = "created again at %s after this run deleted it" if name in read_before else \
        "created at %s while this run went on"
    return " (%s, last written by %s)" % (when % entry.get("created"), entry.get("last_writer") or "an unrecorded writer")


def describe_pool(pool):
    return "%s %s %s" % (api.ALPHA_POOL.kind, api.ALPHA_GROUP, qualified(pool))


def validate_step_weights(weights):
    """Step weights are the v1 pool's percentage after each step: ascending, 1..100, ending at 100."""
    if not weights:
        raise MigrationError("step weights are empty: give the v1 pool's percentage per step, ending with 100")
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= FULL:
            raise MigrationError("step weight %r is not a whole percentage from 1 to 100" % (weight,))
    if list(weights) != sorted(set(weights)):
        raise MigrationError("step weights %s must strictly increase (for example [10, 50, 100])" % (list(weights),))
    if weights[-1] != FULL:
        raise MigrationError("the last step weight must be 100 so that the preview pool can be removed; got %s"
                             % (list(weights),))
    return list(weights)


def ga_percent(pool):
    """The share of the pool's traffic (in percent) the v1 pool gets now, from detect's weights."""
    weights = pool.get("weights") or {}
    alpha, ga = weights.get("alpha") or 0, weights.get("ga") or 0
    if alpha + ga == 0:
        return FULL if pool.get("phase") in (api.PHASE_SHIFTED, api.PHASE_ALPHA_REMOVED) else 0
    return int(round(FULL * ga / float(alpha + ga)))


def pending_steps(weights, pools):
    """The steps still to do: those above the smallest share any selected pool has reached."""
    weights = validate_step_weights(weights)
    reached = min([ga_percent(p) for p in pools] or [0])
    return [w for w in weights if w > reached]


def split_backends(pair, ga_weight):
    """The traffic_split backends that give the v1 pool ``ga_weight`` percent of a pair's traffic."""
    alpha_namespace, alpha_name = split_qualified(pair["alpha"])
    ga_namespace, ga_name = split_qualified(pair["v1"])
    return [
        {"group": api.ALPHA_GROUP, "kind": api.ALPHA_POOL.kind, "namespace": alpha_namespace, "name": alpha_name,
         "weight": FULL - ga_weight},
        {"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "namespace": ga_namespace, "name": ga_name,
         "weight": ga_weight},
    ]


def pair_splits(pairs, ga_weight):
    """The traffic_split ``splits`` that give the v1 pool of every pair ``ga_weight`` percent, in one task."""
    return [{"backends": split_backends(pair, ga_weight)} for pair in pairs]


def rollback_weight(passed_steps):
    """Where a failed step returns: the last step that passed its gates, or all traffic to preview."""
    return passed_steps[-1] if passed_steps else 0


def models_needing_rewrite(pools):
    """InferenceModels whose model name only works through the preview EPP's rewrite."""
    found = []
    for pool in pools:
        for model in pool.get("models") or []:
            if model.get("rewrites"):
                targets = ", ".join("%s:%s" % (t.get("name"), t.get("weight", 1)) for t in model.get("target_models") or [])
                found.append("%s/%s (model %s -> %s)" % (pool["namespace"], model["name"], model.get("model_name"), targets))
    return found


def alpha_stack_objects(pool):
    """The preview objects the seed's manual path removes: the pool, its models, the EPP Deployment and Service."""
    return [object_stub(*ref) for ref in stack_refs(pool)]


def leftover_models(detect, finished):
    """InferenceModels still pointing at the preview pool of a finished v1 pool (``finished_pools``): a run
    stopped between removing that pool and removing its models leaves them, and they keep the preview CRDs."""
    sources = set(pool.get("migrated_from") for pool in finished)
    return [
        object_stub(api.INFERENCE_MODEL, model["namespace"], model["name"])
        for model in detect.get("inference_models") or []
        if (model.get("pool_ref") or {}).get("group") == api.ALPHA_GROUP
        and "%s/%s" % (model["namespace"], model["pool_ref"].get("name")) in sources
    ]


def _request_matched(match):
    """(path, headers) of a completion request that ``match`` (an HTTPRoute rule match) admits, or None when a
    probe cannot follow it (a regular expression, a method other than POST)."""
    if match.get("method", "POST") != "POST":
        return None
    path_match = match.get("path") or {"type": "PathPrefix", "value": "/"}
    value = path_match.get("value", "/")
    if path_match.get("type", "PathPrefix") == "Exact":
        path = value
    elif path_match.get("type", "PathPrefix") == "PathPrefix":
        prefix = value.rstrip("/")
        path = probe.DEFAULT_PATH if probe.DEFAULT_PATH == prefix or probe.DEFAULT_PATH.startswith(prefix + "/") \
            else prefix + probe.DEFAULT_PATH
    else:
        return None
    conditions = {}
    for kind in ("headers", "queryParams"):
        for condition in match.get(kind) or []:
            if condition.get("type", "Exact") != "Exact":
                return None
            conditions.setdefault(kind, []).append((condition["name"], condition["value"]))
    if conditions.get("queryParams"):
        path += "?" + "&".join("%s=%s" % pair for pair in conditions["queryParams"])
    return path, dict(conditions.get("headers") or [])


def _served_model(pool):
    """A model name the pool serves as it is: its first InferenceModel (by name) that needs no rewrite; for a v1
    pool, the model name kept on its first InferenceObjective made from one."""
    models = sorted((model for model in pool.get("models") or [] if model.get("model_name")),
                    key=lambda model: model["name"])
    plain = [model for model in models if not model.get("rewrites")] or models
    return plain[0]["model_name"] if plain else None


def probe_target(pool):
    """What a gate sends to prove one pool serves: a request its first route rule matches, through that route's
    first Gateway (listener: the parentRef's sectionName), with the route's first hostname as Host (a wildcard
    becomes probe.<domain>), and a model the pool serves (None: the probe's default model). A pool none of whose
    rules a probe can follow gets ``unprobed`` instead, saying why."""
    target = {"name": "pool %s" % qualified(pool), "pool": qualified(pool), "model": _served_model(pool)}
    for route in pool.get("routes") or []:
        for rule in route.get("rules") or []:
            requests = [request for request in map(_request_matched, rule.get("matches") or [{}]) if request]
            if not requests or not route.get("parents"):
                continue
            path, headers = requests[0]
            hostnames = route.get("hostnames") or []
            if hostnames:
                headers = dict(headers, Host=hostnames[0].replace("*", "probe", 1))
            parent = route["parents"][0]
            target.update(
                name="pool %s (HTTPRoute %s rule %d)" % (qualified(pool), qualified(route), rule["index"]),
                route=qualified(route), gateway_name=parent["name"], gateway_namespace=parent["namespace"],
                listener=parent["section_name"], path=path, headers=headers)
            return target
    target["unprobed"] = ("no rule of its HTTPRoutes has a match a probe can follow (a path that is exact or a "
                          "prefix, exact headers and query parameters, POST) under a Gateway; give its target in "
                          "the probe targets")
    return target


PROBE_TARGET_FIELDS = ("name", "url", "gateway_name", "gateway_namespace", "listener", "path", "headers", "model")


def probe_targets(pools, overrides=None):
    """(targets, unprobed): a probe target per pool (probe_target) in the shape of endpoint_probe's ``targets``,
    with the operator's ``overrides`` applied (an entry naming a ``pool`` replaces those fields of that pool's
    target; any other entry is probed as well), and a sentence per pool left without one."""
    derived = [probe_target(pool) for pool in pools]
    by_pool = dict((target["pool"], target) for target in derived)
    added = []
    for override in overrides or []:
        if override.get("pool") in by_pool:
            target = by_pool[override["pool"]]
            target.pop("unprobed", None)
            target.update(override)
        else:
            added.append(override)
    unprobed = ["%s: %s" % (target["name"], target["unprobed"]) for target in derived if "unprobed" in target]
    targets = [dict((key, target[key]) for key in PROBE_TARGET_FIELDS if key in target)
               for target in derived + added if "unprobed" not in target]
    return targets, unprobed


def pool_gateways(pools, name=None, namespace=None):
    """{namespace, name} of every Gateway the routes of the pools attach to, each once, then the Gateway ``name``
    (in ``namespace``) when one is given and not among them: the Gateways a migration of these pools needs
    Programmed."""
    gateways = distinct_refs(parent for pool in pools for route in pool.get("routes") or []
                             for parent in route.get("parents") or [])
    named = {"namespace": namespace or "default", "name": name}
    if name and named not in gateways:
        gateways.append(named)
    return gateways


def gate_targets(pools, pairs=None, probe_overrides=None):
    """What the verification gates check: the routes of the preview pools, the v1 pools and their EPPs, and a
    probe target per pool."""
    routes = distinct_refs(route for pool in pools for route in pool.get("routes") or [])
    v1_pools, epps = [], []
    for pair in pairs or []:
        namespace, name = split_qualified(pair["v1"])
        v1_pools.append({"group": api.GA_GROUP, "namespace": namespace, "name": name})
        if pair.get("epp_deployment"):
            epps.append({"namespace": namespace, "name": pair["epp_deployment"]})
    probes, unprobed = probe_targets(pools, probe_overrides)
    return {"gateways": pool_gateways(pools), "routes": routes, "pools": v1_pools, "epp_deployments": epps,
            "probes": probes, "unprobed": unprobed}


def cluster_gate_targets(detect):
    """Gate targets for the cluster as it is: every pool's routes, every v1 pool, every pool's EPP."""
    pools = (detect.get("alpha_pools") or []) + (detect.get("v1_pools") or [])
    targets = gate_targets(pools)
    targets["pools"] = [{"group": api.GA_GROUP, "namespace": p["namespace"], "name": p["name"]}
                        for p in detect.get("v1_pools") or []]
    targets["epp_deployments"] = [{"namespace": p["namespace"], "name": p["epp"]["deployment"]}
                                  for p in pools if (p.get("epp") or {}).get("deployment")]
    return targets


def resource_type(short_name):
    """apiVersion and kind of a resource type the roles name by its short name (see api.RESOURCE_TYPES)."""
    try:
        rtype = api.RESOURCE_TYPES[short_name]
    except KeyError:
        raise MigrationError("unknown resource type %r; known: %s" % (short_name, ", ".join(sorted(api.RESOURCE_TYPES))))
    return {"api_version": rtype.api_version, "kind": rtype.kind}


def model_rewrite_available(detect, target_release):
    """Whether the v1 side can carry model-name rewrites: the CRD is there or the target release brings it."""
    crd = (detect.get("crds") or {}).get(api.INFERENCE_MODEL_REWRITE.crd_name) or {}
    return bool(crd.get("present")) or releases.epp_reads_model_rewrites(target_release)


def model_rewrite_field(detect, release):
    """How InferenceModelRewrites are written: as the installed CRD spells its targets (detect's
    model_rewrite_targets_field; an installed CRD is never replaced), else as the CRD the release's stack installs
    does; None when neither has one."""
    crd = (detect.get("crds") or {}).get(api.INFERENCE_MODEL_REWRITE.crd_name) or {}
    if crd.get("present"):
        return detect.get("model_rewrite_targets_field")
    row = releases.facts(release)
    return row.model_rewrite_field if api.INFERENCE_MODEL_REWRITE.crd_name in row.stack_crds else None


def pool_namespaces(pools):
    return sorted(set(p["namespace"] for p in pools))


# --- what the ga_stack role creates per pool ---------------------------------------------------


def ga_crd_plan(detect, release=api.GA_RELEASE):
    """The CRDs the GA stack of ``release`` installs, from an inferencepool_detect result.

    ``install`` is detect's plan plus every CRD the release's v1 stack needs
    (releases.RELEASES: from v1.3 the InferenceModelRewrite CRD too, since the
    EPP discovers the CRDs once, at start) that the platform does not manage
    (the inference_crds module keeps those that exist).
    """
    plan = (detect or {}).get("crd_plan")
    if not isinstance(plan, dict):
        raise MigrationError("the detect result has no crd_plan; register the result of "
                             "inference_gateway.migration.inferencepool_detect and pass it unchanged")
    install = list(plan.get("install") or [])
    keep_managed = list(plan.get("keep_managed") or [])
    refused = [name for name in install if name in api.ALPHA_CRDS]
    if refused:
        raise MigrationError("the CRD plan asks to install %s, which the running preview stack depends on; the GA "
                             "stack never touches them. Re-run inferencepool_detect and pass its result unchanged."
                             % ", ".join(refused))
    needed = [name for name in releases.facts(release).stack_crds if name not in keep_managed]
    return {
        "install": sorted(set(install) | set(needed)),
        "keep_managed": keep_managed,
    }


def ga_plan(pool, mode="helm", release=api.GA_RELEASE, provider=convert.GKE_PROVIDER, priority_map=None, names=None,
            rewrite_field=None, epp_image=None, epp_flags=None):
    """Everything the ga_stack role creates for one detect ``alpha_pools`` entry, at GIE ``release``.

    ``rewrite_field`` (model_rewrite_field) asks for InferenceModelRewrites
    for the models that need one; without it such models only get a warning.
    ``epp_image`` (a registry path without tag) and ``epp_flags`` change the EPP.
    """
    if mode not in ("helm", "manifests"):
        raise MigrationError("mode %r is neither helm nor manifests" % (mode,))
    row = releases.facts(release)
    releases.image_values(release, epp_image)  # refuses a malformed image before anything is planned
    facts = convert.pool_facts(pool)
    name = convert.ga_release_name(pool)
    namespace = facts.namespace
    models = pool.get("models") or []
    objectives = [convert_models.objective(m, name, namespace, priority_map, names) for m in models]
    warnings = [w for m in models for w in convert_models.model_warnings(m, namespace)]
    rewrites = []
    if rewrite_field:
        rewrites = [r for r in (convert_models.model_rewrite(m, name, namespace, rewrite_field) for m in models) if r]
        if rewrites and not releases.epp_reads_model_rewrites(release):
            warnings.append("InferenceModelRewrites %s were created, but the EPP of release %s does not read them "
                            "(it does from %s on)" % (", ".join(r["metadata"]["name"] for r in rewrites), release,
                                                      releases.MODEL_REWRITES_FROM))
    if (objectives or rewrites) and not row.epp_reads_objectives:
        warnings.append("The EPP of GIE %s starts no InferenceObjective or InferenceModelRewrite reconciler (upstream "
                        "bug llm-d/llm-d-router#610): %s exist but have no effect until the EPP is upgraded to a later "
                        "release" % (release, ", ".join(o["metadata"]["name"] for o in objectives + rewrites)))
    v1 = convert.v1_pool(pool, name=name, epp_service=epp_manifests.epp_name(name))
    result = {
        "alpha": facts.qualified_name,
        "v1": "%s/%s" % (namespace, name),
        "namespace": namespace,
        "release": name,
        "mode": mode,
        "objectives": objectives,
        "model_rewrites": rewrites,
        "warnings": warnings,
        "epp_deployment": lookup_ref(api.DEPLOYMENT, epp_manifests.epp_name(name), namespace),
        "v1_pool": lookup_ref(api.GA_POOL, name, namespace),
    }
    if mode == "helm":
        result["chart_values"] = convert.ga_chart_values(pool, provider, release, epp_image, epp_flags)
        # The chart writes neither our marks nor (before v1.4) failureMode on the v1 pool.
        result["v1_pool_patch"] = {"apiVersion": v1["apiVersion"], "kind": v1["kind"],
                                   "metadata": dict((k, v1["metadata"][k])
                                                    for k in ("name", "namespace", "labels", "annotations")),
                                   "spec": {"endpointPickerRef": {
                                       "failureMode": v1["spec"]["endpointPickerRef"]["failureMode"]}}}
    else:
        result["manifests"] = epp_manifests.ga_manifests(pool, release, provider, name, epp_image, epp_flags)
    return result


def ga_stack_record(plan):
    """What the roles keep of one v1 stack (a ga_plan result) once it is built: the preview and v1 pool, the Helm
    release, the mode, the EPP Deployment and the names of the InferenceObjectives and InferenceModelRewrites."""
    epp = plan["epp_deployment"]
    return {"alpha": plan["alpha"], "v1": plan["v1"], "release": plan["release"], "mode": plan["mode"],
            "epp_deployment": epp["name"], "epp": {"namespace": epp["namespace"], "name": epp["name"]},
            "objectives": [o["metadata"]["name"] for o in plan["objectives"]],
            "model_rewrites": [r["metadata"]["name"] for r in plan["model_rewrites"]],
            "warnings": plan["warnings"]}
