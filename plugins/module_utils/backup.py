# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Choosing what a backup holds: the preview pools in scope and everything that serves them.

What is chosen is written by backup_files; restore brings it back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, helm
from ansible_collections.inference_gateway.migration.plugins.module_utils.backup_files import cluster_identity, write_backup
from ansible_collections.inference_gateway.migration.plugins.module_utils.epp import served_pools
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import helm_release, model_pool_key, split_qualified
from ansible_collections.inference_gateway.migration.plugins.module_utils.refs import (
    backend_key, grant_entry_allows, pool_key, route_backends, sends_traffic_to_alpha_pool)


# Read in the namespaces that hold a Helm release only: listing Secrets across all namespaces
# needs a right the migration has no other use for, so these cost one list per release namespace.
_LISTED_PER_NAMESPACE = (api.SECRET,)


class _Reader:
    """Lists each type once, across all namespaces, and keeps what was chosen, without duplicates.

    The number of list requests depends on the number of types only, never on how many
    namespaces are in scope or hold pools (Secrets aside, see _LISTED_PER_NAMESPACE); each list keeps only the objects of the namespaces
    asked for (the ``namespaces`` in scope, or the namespaces of the chosen pools' stacks), so
    memory follows what the backup can hold, not the size of the cluster.
    """

    def __init__(self, cluster, namespaces):
        self.cluster = cluster
        self.scope = set(namespaces) if namespaces else None
        self.stack_namespaces = set()  # the namespaces of the chosen pools and their Helm releases
        self._lists = {}
        self.chosen = {}

    def _listed(self, rtype, label_selector, namespaces):
        """namespace -> objects of ``rtype`` in ``namespaces`` (None: every namespace)."""
        key = (rtype, label_selector, frozenset(namespaces) if namespaces is not None else None)
        if key not in self._lists:
            def keep(obj):
                return namespaces is None or obj["metadata"].get("namespace") in namespaces
            by_namespace = {}
            for obj in self.cluster.list(rtype, label_selector=label_selector, keep=keep) or []:
                by_namespace.setdefault(obj["metadata"].get("namespace"), []).append(obj)
            self._lists[key] = by_namespace
        return self._lists[key]

    def list(self, rtype, namespace=None, label_selector=None):
        """Objects of a type in one of the stack namespaces, or cluster-scoped ones (``namespace`` None)."""
        if rtype in _LISTED_PER_NAMESPACE:
            return self._listed_in(rtype, label_selector, namespace)
        if namespace is None:
            return self._listed(rtype, label_selector, None).get(None, [])
        if namespace not in self.stack_namespaces:
            # A bug, not a cluster state: the stack lists only cover the chosen pools' namespaces.
            raise AssertionError("listed %s in %s, which holds no chosen pool" % (rtype.kind, namespace))
        return self._listed(rtype, label_selector, self.stack_namespaces).get(namespace, [])

    def _listed_in(self, rtype, label_selector, namespace):
        key = (rtype, label_selector, namespace)
        if key not in self._lists:
            self._lists[key] = self.cluster.list(rtype, namespace=namespace, label_selector=label_selector) or []
        return self._lists[key]

    def list_in_scope(self, rtype):
        listed = self._listed(rtype, None, self.scope)
        return [obj for namespace in sorted(listed, key=str) for obj in listed[namespace]]

    def choose(self, rtype, obj):
        metadata = obj["metadata"]
        self.chosen[(rtype, metadata.get("namespace"), metadata["name"])] = (rtype, obj)


def _parse_pool_names(pools):
    return set(split_qualified(item, "pools entry") for item in pools or [])


def _select_pools(reader, pools):
    """(alpha pools to back up, keys of wanted alpha pools that are gone but that routes still send traffic to).

    A pool that is gone but still referenced is what an interrupted run leaves: its routes and
    InferenceModels are still worth a backup. A wanted pool that is neither there nor referenced
    is a mistake in ``pools``.
    """
    wanted = _parse_pool_names(pools)
    found = reader.list_in_scope(api.ALPHA_POOL)
    existing = set(pool_key(p) for p in found)
    gone = set(
        key for route in reader.list_in_scope(api.HTTP_ROUTE) for _rule, _ref, key, weight in route_backends(route)
        if sends_traffic_to_alpha_pool(key, weight) and key not in existing
        and (not wanted or (key.namespace, key.name) in wanted)
    )
    if not wanted:
        return found, gone
    selected = [p for p in found if (p["metadata"]["namespace"], p["metadata"]["name"]) in wanted]
    missing = wanted - set((p["metadata"]["namespace"], p["metadata"]["name"]) for p in selected)
    missing -= set((key.namespace, key.name) for key in gone)
    if missing:
        raise MigrationError(
            "no %s named %s in the namespaces in scope; check the pools option (namespace/name) and namespaces"
            % (api.ALPHA_POOL.crd_name, ", ".join(sorted("%s/%s" % m for m in missing))),
            missing_pools=sorted("%s/%s" % m for m in missing),
        )
    return selected, gone


def _owned_by(obj, release):
    return release is not None and helm_release(obj) == release


def _collect_pool_stack(reader, pool):
    """Choose what serves one alpha pool: its EPP, the EPP's identity and RBAC, GKE policies, Helm release."""
    key = pool_key(pool)
    namespace = pool["metadata"]["namespace"]
    release = helm_release(pool)
    extension_ref = pool.get("spec", {}).get("extensionRef") or {}
    epp_names = set([extension_ref["name"]]) if extension_ref.get("name") else set()

    deployments = [d for d in reader.list(api.DEPLOYMENT, namespace)
                   if d["metadata"]["name"] in epp_names or _owned_by(d, release)
                   or any(served.pool == key for served in served_pools(d))]
    epp_names.update(d["metadata"]["name"] for d in deployments)
    service_accounts = set(epp_names)
    config_maps = set()
    for deployment in deployments:
        reader.choose(api.DEPLOYMENT, deployment)
        template_spec = deployment["spec"]["template"]["spec"]
        service_accounts.add(template_spec.get("serviceAccountName") or "default")
        config_maps.update(v["configMap"]["name"] for v in template_spec.get("volumes") or [] if v.get("configMap"))

    def named_or_owned(rtype, names, scope_namespace):
        for obj in reader.list(rtype, scope_namespace):
            if obj["metadata"]["name"] in names or _owned_by(obj, release):
                reader.choose(rtype, obj)

    named_or_owned(api.SERVICE, epp_names, namespace)
    named_or_owned(api.SERVICE_ACCOUNT, service_accounts - set(["default"]), namespace)
    named_or_owned(api.CONFIG_MAP, config_maps, namespace)
    named_or_owned(api.ROLE, epp_names, namespace)
    named_or_owned(api.ROLE_BINDING, epp_names, namespace)
    named_or_owned(api.CLUSTER_ROLE, epp_names, None)
    named_or_owned(api.CLUSTER_ROLE_BINDING, epp_names, None)
    named_or_owned(api.CLUSTER_POD_MONITORING, (), None)
    for policy_type in (api.HEALTH_CHECK_POLICY, api.GCP_BACKEND_POLICY):
        for policy in reader.list(policy_type, namespace):
            target = policy.get("spec", {}).get("targetRef") or {}
            if backend_key(dict(target, name=target.get("name", "")), namespace) == key or _owned_by(policy, release):
                reader.choose(policy_type, policy)
    return release


def _helm_release_secrets(reader, release):
    return [s for s in reader.list(api.SECRET, release["namespace"], label_selector=helm.RELEASE_SECRETS_SELECTOR)
            if helm.is_release_secret(s, release["name"])]


def _allows_pool(grant, key):
    """Whether a ReferenceGrant lets other namespaces' routes reach the preview pool ``key``."""
    return grant["metadata"].get("namespace") == key.namespace and any(
        grant_entry_allows(entry, key.group, key.kind, key.name) for entry in (grant.get("spec") or {}).get("to") or [])


def collect(cluster, namespaces=None, pools=None):
    """Every object the migration may change or delete, as (ResourceType, object) pairs.

    Scope: the alpha pools in ``namespaces`` (all by default), narrowed to
    ``pools`` ("namespace/name") when given; InferenceModels and HTTPRoutes
    that point at those pools, or at such pools that are gone while routes
    still reference them (every InferenceModel when no pool is named);
    each pool's EPP with its Service, ServiceAccount, ConfigMaps and RBAC (named
    after the EPP or installed by the pool's Helm release); GKE policies that
    target the pools; the Helm release Secrets of releases that own pools; the
    ReferenceGrants that let routes of other namespaces reach the pools; and
    the alpha CRDs.
    """
    reader = _Reader(cluster, namespaces)
    selected, gone = _select_pools(reader, pools)
    keys = set(pool_key(p) for p in selected) | gone
    for pool in selected:
        release = helm_release(pool)
        reader.stack_namespaces.add(pool["metadata"]["namespace"])
        if release:
            reader.stack_namespaces.add(release["namespace"])
    for pool in selected:
        reader.choose(api.ALPHA_POOL, pool)
        release = _collect_pool_stack(reader, pool)
        if release:
            for secret in _helm_release_secrets(reader, release):
                reader.choose(api.SECRET, secret)
    for model in reader.list_in_scope(api.INFERENCE_MODEL):
        if not pools or model_pool_key(model) in keys:
            reader.choose(api.INFERENCE_MODEL, model)
    for route in reader.list_in_scope(api.HTTP_ROUTE):
        if any(backend[2] in keys for backend in route_backends(route)):
            reader.choose(api.HTTP_ROUTE, route)
    for grant in reader.list_in_scope(api.REFERENCE_GRANT):
        if any(_allows_pool(grant, key) for key in keys):
            reader.choose(api.REFERENCE_GRANT, grant)
    for name in api.ALPHA_CRDS:
        crd = cluster.get(api.CRD, name)
        if crd is not None:
            reader.choose(api.CRD, crd)
    return list(reader.chosen.values())


def make_backup(cluster, dest, namespaces=None, pools=None, now=None):
    """migration_backup: collect and write; nothing is written when the cluster holds nothing to back up."""
    items = collect(cluster, namespaces, pools)
    if not items:
        return {"changed": False, "path": None, "index": None, "objects": {},
                "diff": {"before": {"backup": None}, "after": {"backup": None}}}
    scope = {"namespaces": list(namespaces) if namespaces else "all", "pools": list(pools) if pools else "all"}
    written = write_backup(dest, items, "migration_backup", cluster.server_version(), scope, now,
                           dry_run=cluster.dry_run, cluster_uid=cluster_identity(cluster))
    return {"changed": True, "path": written["path"], "index": written["index"], "objects": written["objects"],
            "diff": {"before": {"backup": None}, "after": {"backup": written["path"], "objects": written["objects"]}}}
