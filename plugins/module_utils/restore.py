# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The restore engine: bring back what a backup holds, in order, touching only what the migration owns."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, gateway_address, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.backup_files import (
    STAGE_CRDS,
    STAGE_ROUTES,
    cluster_identity,
    creatable,
    describe_object,
    read_backup,
    restore_rank,
    restore_stage,
)
from ansible_collections.inference_gateway.migration.plugins.module_utils.conditions import crd_established
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import crd_resource_type, type_key
from ansible_collections.inference_gateway.migration.plugins.module_utils.refs import backend_key, weight_of

# The parts of an existing object that a migration may change (an EPP flipped to
# the GA group, a policy re-targeted...). A restore puts these back from the
# backup and leaves everything else of an existing object alone.
MIGRATION_OWNED_FIELDS = {
    (api.DEPLOYMENT.group, api.DEPLOYMENT.kind): (("spec", "template", "spec", "containers"),),
    (api.SERVICE.group, api.SERVICE.kind): (("spec", "selector"), ("spec", "ports")),
    (api.ALPHA_POOL.group, api.ALPHA_POOL.kind): (("spec",),),
    (api.INFERENCE_MODEL.group, api.INFERENCE_MODEL.kind): (("spec",),),
    (api.HEALTH_CHECK_POLICY.group, api.HEALTH_CHECK_POLICY.kind): (("spec",),),
    (api.GCP_BACKEND_POLICY.group, api.GCP_BACKEND_POLICY.kind): (("spec",),),
    (api.ROLE.group, api.ROLE.kind): (("rules",),),
    (api.CLUSTER_ROLE.group, api.CLUSTER_ROLE.kind): (("rules",),),
    (api.ROLE_BINDING.group, api.ROLE_BINDING.kind): (("subjects",),),
    (api.CLUSTER_ROLE_BINDING.group, api.CLUSTER_ROLE_BINDING.kind): (("subjects",),),
}


def _get_path(obj, path):
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _set_path(obj, path, value):
    for part in path[:-1]:
        obj = obj.setdefault(part, {})
    if value is None:
        obj.pop(path[-1], None)
    else:
        obj[path[-1]] = copy.deepcopy(value)


def owned_parts(rtype, obj):
    return dict((".".join(path), _get_path(obj, path)) for path in MIGRATION_OWNED_FIELDS.get(type_key(rtype), ()))


def put_back_owned_parts(rtype, live, backed):
    """The live object with the migration-owned parts of the backup; None when they already match."""
    if owned_parts(rtype, live) == owned_parts(rtype, backed):
        return None
    updated = copy.deepcopy(live)
    for path in MIGRATION_OWNED_FIELDS[type_key(rtype)]:
        _set_path(updated, path, _get_path(backed, path))
    return updated


def put_back_grant_entries(live, backed):
    """The live ReferenceGrant with the ``to`` entries of the backup it lacks (the migration drops the preview
    pools' entries after removing them); entries added since, such as the v1 pools', stay. None when none lack."""
    entries = (live.get("spec") or {}).get("to") or []
    missing = [entry for entry in (backed.get("spec") or {}).get("to") or [] if entry not in entries]
    if not missing:
        return None
    updated = copy.deepcopy(live)
    updated.setdefault("spec", {})["to"] = entries + copy.deepcopy(missing)
    return updated


def _is_alpha_pool(key):
    return (key.group, key.kind) == (api.ALPHA_POOL.group, api.ALPHA_POOL.kind)


def _comparable_refs(refs, namespace):
    return [(backend_key(ref, namespace), weight_of(ref), ref.get("port"), ref.get("filters")) for ref in refs or []]


def point_route_back(live, backed):
    """The live route with the backendRefs the backup had in its rules that sent traffic to alpha pools.

    A backed-up rule is found in the live route by its matches (the same
    position first); a rule the migration removed is appended again. Other rules
    and every other field stay as they are. None when nothing needs to change.
    """
    namespace = backed["metadata"].get("namespace")
    backed_rules = backed.get("spec", {}).get("rules") or []
    updated = copy.deepcopy(live)
    live_rules = updated.setdefault("spec", {}).setdefault("rules", [])
    used = set()
    changed = False
    for index, rule in enumerate(backed_rules):
        if not any(_is_alpha_pool(backend_key(ref, namespace)) for ref in rule.get("backendRefs") or []):
            continue
        same_matches = [i for i, r in enumerate(live_rules) if r.get("matches") == rule.get("matches") and i not in used]
        if not same_matches:
            live_rules.append(copy.deepcopy(rule))
            used.add(len(live_rules) - 1)
            changed = True
            continue
        position = index if index in same_matches else same_matches[0]
        used.add(position)
        if _comparable_refs(live_rules[position].get("backendRefs"), namespace) != _comparable_refs(
                rule.get("backendRefs"), namespace):
            live_rules[position]["backendRefs"] = copy.deepcopy(rule["backendRefs"])
            changed = True
    return updated if changed else None


def _read_modify_write(cluster, rtype, metadata, change):
    """Apply ``change(live) -> new body or None`` guarded by resourceVersion; retry lost races.

    Returns (before, after) of the write, or None when nothing needed changing.
    """
    name, namespace = metadata["name"], metadata.get("namespace")

    def read():
        live = cluster.get(rtype, name, namespace)
        if live is None:
            raise MigrationError("%s %s/%s was deleted while the restore ran; run the restore again"
                                 % (rtype.kind, namespace, name))
        return live

    written = waiting.read_modify_write(read, change, lambda body: cluster.replace(rtype, body),
                                        "%s %s/%s" % (rtype.kind, namespace, name))
    return None if written.body is None else (written.before, written.body)


def _same_cluster(cluster, path, index):
    """Refuse, before any write, a backup another cluster wrote: its objects and routes belong there.

    Backups written before the index recorded the cluster, and credentials that may not read the kube-system
    namespace, cannot tell; those are restored as before.
    """
    recorded = (index.get("cluster") or {}).get("kube_system_uid")
    here = cluster_identity(cluster) if recorded else None
    if recorded and here and recorded != here:
        raise MigrationError(
            "backup %s was written on another cluster (kube-system namespace uid %s, server %s, at %s) than the one "
            "connected to (kube-system namespace uid %s). Point migration_kubeconfig and migration_context at the "
            "cluster the backup came from, or give rollback_backup_path a backup of this cluster. Nothing was changed."
            % (path, recorded, (index.get("cluster") or {}).get("server_version"), index.get("when"), here),
            backup_cluster=recorded, cluster=here)


def _served_or_restored(cluster, items):
    """Refuse, before any write, a backup whose types the cluster does not serve and cannot get back."""
    restored_types = set()
    for rtype, obj in items:
        if type_key(rtype) == type_key(api.CRD):
            restored_types.add(type_key(crd_resource_type(obj)))
    unserved = sorted(set("%s %s" % (rtype.kind, rtype.api_version) for rtype, dummy in items
                          if type_key(rtype) not in restored_types and not cluster.served(rtype)))
    if unserved:
        raise MigrationError("the cluster does not serve %s and the backup has no CRD for it; install the CRD "
                             "first, then restore again" % ", ".join(unserved), unserved=unserved)
    return restored_types


class _Restore:
    def __init__(self, cluster, restored_types, wait_timeout):
        self.cluster = cluster
        self.restored_types = restored_types
        self.wait_timeout = wait_timeout
        self.created = []
        self.updated = []
        self.routes = []
        self.before = {}
        self.after = {}

    def _record(self, bucket, rtype, obj, before, after):
        description = describe_object(rtype, obj)
        bucket.append(description)
        key = "%s %s" % (rtype.kind, "/".join(filter(None, [description["namespace"], description["name"]])))
        self.before[key] = before
        self.after[key] = after

    def crd(self, rtype, backed):
        name = backed["metadata"]["name"]
        live = self.cluster.get(rtype, name)
        if live is not None and live["metadata"].get("deletionTimestamp") and not self.cluster.dry_run:
            waiting.wait_for(lambda: self.cluster.get(rtype, name) is None, self.wait_timeout,
                             "CRD %s to finish terminating before it is created again" % name)
            live = None
        if live is not None:
            return
        self.cluster.create(rtype, creatable(backed))
        self._record(self.created, rtype, backed, "absent", "restored")
        if not self.cluster.dry_run:
            waiting.wait_for(lambda: crd_established(self.cluster.get(rtype, name)), self.wait_timeout,
                             "CRD %s to be Established" % name)
        self.cluster.forget_discovery()

    def _would_come_with_crd(self, rtype):
        return self.cluster.dry_run and type_key(rtype) in self.restored_types and not self.cluster.served(rtype)

    def obj(self, rtype, backed):
        metadata = backed["metadata"]
        if self._would_come_with_crd(rtype):
            # In check mode the CRD was only dry-run created, so its objects cannot be sent.
            self._record(self.created, rtype, backed, "absent", "restored")
            return
        if self.cluster.get(rtype, metadata["name"], metadata.get("namespace")) is None:
            self.cluster.create(rtype, creatable(backed))
            self._record(self.created, rtype, backed, "absent", "restored")
            return
        if type_key(rtype) == type_key(api.REFERENCE_GRANT):
            written = _read_modify_write(self.cluster, rtype, metadata, lambda now: put_back_grant_entries(now, backed))
            if written:
                self._record(self.updated, rtype, backed, _grant_entries(written[0]), _grant_entries(written[1]))
            return
        if type_key(rtype) not in MIGRATION_OWNED_FIELDS:
            return
        written = _read_modify_write(self.cluster, rtype, metadata, lambda now: put_back_owned_parts(rtype, now, backed))
        if written:
            self._record(self.updated, rtype, backed, owned_parts(rtype, written[0]), owned_parts(rtype, written[1]))

    def route(self, rtype, backed, route_to_alpha):
        metadata = backed["metadata"]
        changed = False
        if route_to_alpha:
            if self.cluster.get(rtype, metadata["name"], metadata.get("namespace")) is None:
                self.cluster.create(rtype, creatable(backed))
                self._record(self.created, rtype, backed, "absent", "restored")
                changed = True
            else:
                written = _read_modify_write(self.cluster, rtype, metadata, lambda now: point_route_back(now, backed))
                if written:
                    self._record(self.updated, rtype, backed, _route_refs(written[0]), _route_refs(written[1]))
                    changed = True
        self.routes.append(dict(describe_object(rtype, backed), changed=changed,
                                gateways=gateway_endpoints(self.cluster, backed)))


def _grant_entries(grant):
    return {"spec.to": (grant.get("spec") or {}).get("to")}


def _route_refs(route):
    return {"rules.backendRefs": [rule.get("backendRefs") for rule in route.get("spec", {}).get("rules") or []]}


def gateway_endpoints(cluster, route):
    """Where each parent Gateway of a route listens: {namespace, name, url}; url None until it has an address."""
    endpoints = []
    route_namespace = route["metadata"].get("namespace")
    for parent in route.get("spec", {}).get("parentRefs") or []:
        if (parent.get("group") or api.GATEWAY.group, parent.get("kind") or api.GATEWAY.kind) != type_key(api.GATEWAY):
            continue
        namespace = parent.get("namespace") or route_namespace
        gateway = cluster.get(api.GATEWAY, parent["name"], namespace)
        url = gateway_address.url(gateway, parent.get("sectionName"), parent.get("port")) if gateway else None
        endpoints.append({"namespace": namespace, "name": parent["name"], "url": url})
    return endpoints


def restore(cluster, path, route_to_alpha=True, wait_timeout=waiting.DEFAULT_TIMEOUT):
    """Bring back what a backup holds: CRDs (waited Established), missing objects, Helm releases, routes.

    Existing objects are left alone except for their migration-owned parts
    (MIGRATION_OWNED_FIELDS), which are put back from the backup. With
    ``route_to_alpha`` the routes get back the backendRefs their alpha-pool rules
    had; without it routes are not touched. A second run changes nothing.
    """
    index, items = read_backup(path)
    _same_cluster(cluster, path, index)
    restored_types = _served_or_restored(cluster, items)
    work = _Restore(cluster, restored_types, wait_timeout)
    for rtype, backed in sorted(items, key=restore_rank):
        stage = restore_stage(rtype, backed)
        if stage == STAGE_CRDS:
            work.crd(rtype, backed)
        elif stage == STAGE_ROUTES:
            work.route(rtype, backed, route_to_alpha)
        else:
            work.obj(rtype, backed)
    return {
        "changed": bool(work.created or work.updated),
        "path": os.path.abspath(path),
        "created": work.created,
        "updated": work.updated,
        "routes": work.routes,
        "model_names": sorted(set(obj.get("spec", {}).get("modelName") for rtype, obj in items
                                  if type_key(rtype) == type_key(api.INFERENCE_MODEL)) - set([None])),
        "diff": {"before": work.before, "after": work.after},
    }
