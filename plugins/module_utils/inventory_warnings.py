# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Detection's warnings: what the migration would change or break, in sentences that name the object."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import namespace_of, qualified_name, sorted_by_name


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
    for route in sorted_by_name(routes):
        for rule_index, _ref_index, key, _weight in refs.route_backends(route):
            if refs.is_pool(key) and key.namespace != namespace_of(route):
                warnings.append(
                    "HTTPRoute %s rule %d references %s in another namespace: it needs a ReferenceGrant there, and the "
                    "migration must create the v1 pool's grant too" % (qualified_name(route), rule_index, key)
                )
    for group, entries in ((api.ALPHA_GROUP, alpha_entries), (api.GA_GROUP, ga_entries)):
        for pool in entries:
            if not pool["routes"]:
                warnings.append("%s InferencePool %s/%s has no HTTPRoute sending it traffic"
                                % (group, pool["namespace"], pool["name"]))
    return warnings
