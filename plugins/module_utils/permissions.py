# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Which API permissions each migration path needs, checked before the first write."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch")

# Objects the Helm chart or the rendered manifests create for a v1 pool.
_STACK_NAMESPACED = (api.GA_POOL, api.INFERENCE_OBJECTIVE, api.DEPLOYMENT, api.SERVICE, api.SERVICE_ACCOUNT,
                     api.CONFIG_MAP, api.ROLE, api.ROLE_BINDING)
_STACK_CLUSTER = (api.CLUSTER_ROLE, api.CLUSTER_ROLE_BINDING)
# Objects removed with the preview stack.
_ALPHA_NAMESPACED = (api.ALPHA_POOL, api.INFERENCE_MODEL, api.DEPLOYMENT, api.SERVICE, api.SERVICE_ACCOUNT,
                     api.ROLE, api.ROLE_BINDING)
# What inferencepool_detect lists cluster-wide (and the gates read).
_OBSERVED = (api.ALPHA_POOL, api.INFERENCE_MODEL, api.GA_POOL, api.INFERENCE_OBJECTIVE, api.INFERENCE_MODEL_REWRITE,
             api.HTTP_ROUTE, api.GATEWAY, api.DEPLOYMENT, api.SERVICE, api.POD)

# What migration_backup lists cluster-wide beyond _OBSERVED (Secrets it lists per namespace).
_BACKED_UP = (api.SERVICE_ACCOUNT, api.CONFIG_MAP, api.ROLE, api.ROLE_BINDING, api.CLUSTER_ROLE,
              api.CLUSTER_ROLE_BINDING, api.REFERENCE_GRANT)

PATHS = ("detect", "zero_downtime", "simple", "rollback")


def _permission(verb, rtype, namespace=None):
    return {"verb": verb, "group": rtype.group, "resource": rtype.plural, "namespace": namespace}


def required_permissions(path, namespaces, helm=True, gke_policies=True):
    """Every (verb, group, resource, namespace) the path needs; namespace None means cluster-wide."""
    if path not in PATHS:
        raise ValueError("unknown migration path %r; expected one of %s" % (path, ", ".join(PATHS)))
    # Detection lists each type and reads the five inference CRDs by name.
    needed = [_permission("list", rtype) for rtype in _OBSERVED + (api.CRD,)]
    needed.append(_permission("get", api.CRD))
    if path == "detect":
        return _unique(needed)
    needed += [_permission("list", rtype) for rtype in _BACKED_UP]
    if gke_policies:
        needed += [_permission("list", rtype)
                   for rtype in (api.HEALTH_CHECK_POLICY, api.GCP_BACKEND_POLICY, api.CLUSTER_POD_MONITORING)]
    for namespace in namespaces:
        needed += [_permission(verb, rtype, namespace) for rtype in _OBSERVED for verb in READ]
        needed += [_permission(verb, rtype, namespace) for rtype in (api.HTTP_ROUTE, api.REFERENCE_GRANT)
                   for verb in ("get", "update")]
        needed += [_permission(verb, rtype, namespace) for rtype in _STACK_NAMESPACED for verb in WRITE + ("delete",)]
        needed += [_permission("delete", rtype, namespace) for rtype in _ALPHA_NAMESPACED]
        if path == "rollback":
            needed += [_permission("create", rtype, namespace) for rtype in (api.ALPHA_POOL, api.INFERENCE_MODEL)]
        if helm:
            # Helm keeps release state in Secrets of the release namespace.
            needed += [_permission(verb, api.SECRET, namespace) for verb in READ + WRITE + ("delete",)]
        if gke_policies:
            needed += [_permission(verb, rtype, namespace) for rtype in (api.HEALTH_CHECK_POLICY, api.GCP_BACKEND_POLICY)
                       for verb in WRITE + ("delete",)]
    needed += [_permission(verb, rtype) for rtype in _STACK_CLUSTER for verb in WRITE + ("delete",)]
    needed += [_permission(verb, api.CRD) for verb in ("get", "create", "delete")]
    return _unique(needed)


def _unique(permissions):
    seen = set()
    result = []
    for permission in permissions:
        key = tuple(sorted(permission.items(), key=lambda kv: kv[0]))
        if key not in seen:
            seen.add(key)
            result.append(permission)
    return result


def review_body(permission):
    attributes = {"verb": permission["verb"], "group": permission["group"], "resource": permission["resource"]}
    if permission.get("namespace"):
        attributes["namespace"] = permission["namespace"]
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}


def describe_permission(permission):
    resource = permission["resource"] + ("." + permission["group"] if permission["group"] else "")
    where = "in namespace %s" % permission["namespace"] if permission.get("namespace") else "cluster-wide"
    return "%s %s %s" % (permission["verb"], resource, where)


def check(cluster, permissions):
    """Ask the API server about each permission; return (allowed, denied) lists."""
    allowed, denied = [], []
    for permission in permissions:
        status = cluster.create_review(review_body(permission)).get("status", {})
        (allowed if status.get("allowed") else denied).append(permission)
    return allowed, denied
