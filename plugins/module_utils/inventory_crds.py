# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Detection of the cluster itself: its version, and the inference CRDs with who manages them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, gke_version
from ansible_collections.inference_gateway.migration.plugins.module_utils.conditions import crd_established
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import annotations_of, labels_of


def crd_manager(crd):
    """"gke" when the platform reconciles the CRD, "helm" when a Helm release owns it, else None."""
    labels, annotations = labels_of(crd), annotations_of(crd)
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
        "established": crd_established(crd),
        "bundle_version": annotations_of(crd).get(api.CRD_BUNDLE_VERSION_ANNOTATION),
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
