# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Preview objects a migration run leaves behind, named with what the operator should do about each.

The preview CRDs can only go once no preview object is left anywhere. A run migrates
the pools it selected; whatever else is still there (a pool the run did not select,
an InferenceModel whose pool no longer exists) keeps the CRDs. The run must say so
and name every such object, never keep the CRDs silently.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import qualified_names


def _delete_command(rtype, namespace, name):
    return "kubectl delete %s.%s %s -n %s" % (rtype.plural, rtype.group, name, namespace)


def _pool_leftover(pool):
    return {
        "kind": api.ALPHA_POOL.kind, "namespace": pool["namespace"], "name": pool["name"],
        "why": "this run did not migrate this preview InferencePool",
        "fix": "migrate it: run the playbook again with %s/%s in migration_pools (or without migration_pools)"
               % (pool["namespace"], pool["name"]),
    }


def _model_leftover(model, existing_alpha_pools):
    pool_ref = model.get("pool_ref") or {}
    group = pool_ref.get("group") or api.MODEL_POOL_REF_DEFAULT_GROUP
    pool = "%s/%s" % (model["namespace"], pool_ref.get("name"))
    entry = {"kind": api.INFERENCE_MODEL.kind, "namespace": model["namespace"], "name": model["name"]}
    if group == api.ALPHA_GROUP and pool in existing_alpha_pools:
        entry["why"] = "it belongs to preview InferencePool %s, which this run did not migrate" % pool
        entry["fix"] = "migrate that pool with it: run the playbook again with %s in migration_pools" % pool
    else:
        entry["why"] = "its InferencePool %s (%s) does not exist, so it serves nothing" % (pool, group)
        entry["fix"] = ("delete it (%s) once nothing needs it, or create an InferenceObjective for a v1 pool instead"
                        % _delete_command(api.INFERENCE_MODEL, model["namespace"], model["name"]))
    return entry


def preview_leftovers(detect):
    """Every preview object in a detect result, each with kind, namespace, name, why it is there and the fix.

    Called on what is left after a run removed the pools it migrated, so every object
    found is one the run did not migrate.
    """
    pools = detect.get("alpha_pools") or []
    existing = set(qualified_names(pools))
    return [_pool_leftover(p) for p in pools] + [
        _model_leftover(m, existing) for m in detect.get("inference_models") or []]


def describe_leftover(leftover):
    return "%s %s/%s: %s; %s" % (leftover["kind"], leftover["namespace"], leftover["name"], leftover["why"],
                                 leftover["fix"])


def leftovers_message(leftovers):
    """What the run says when preview objects keep the preview CRDs; empty when nothing is left."""
    if not leftovers:
        return ""
    return ("The preview CRDs (%s) were kept: %d preview object(s) remain that this run did not migrate. %s. "
            "Then run the playbook again: it deletes the preview CRDs once no preview object is left."
            % (", ".join(api.ALPHA_CRDS), len(leftovers), ". ".join(describe_leftover(l) for l in leftovers)))
