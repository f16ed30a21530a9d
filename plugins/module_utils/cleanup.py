# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Removing CRDs of the preview API, only when nothing uses them any more.

Deleting a CRD deletes every object of its kind in every namespace, and a
route or an endpoint picker still bound to that kind stops serving. So before
the first write this looks, across all namespaces, for custom resources of
the target CRDs, HTTPRoute backendRefs to their kinds and EPP Deployments that
serve a pool of their kinds, and refuses while any is found.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.backup_files import cluster_identity, write_backup
from ansible_collections.inference_gateway.migration.plugins.module_utils.epp import served_pools
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import crd_resource_type, type_key
from ansible_collections.inference_gateway.migration.plugins.module_utils.refs import route_backends

BACKUP_KIND = "crd_cleanup"


def blocker(kind, namespace, name, reason):
    return {"kind": kind, "namespace": namespace, "name": name, "reason": reason}


def check_request(crds, force, backup_dir):
    """The CRD names to remove, deduplicated; refuse protected CRDs and forcing without a backup."""
    names = list(dict.fromkeys(crds))
    if not names:
        raise MigrationError("crds is empty: name the CRDs to delete (the default is the two alpha CRDs)")
    protected = [name for name in names if name in api.PROTECTED_CRDS]
    if protected and not force:
        raise MigrationError(
            "refusing to delete %s: the GA stack still needs it (deleting a CRD deletes all its objects). Leave "
            "it out of crds; only if you really mean it, set force: true with backup_dir" % ", ".join(protected),
            protected_crds=protected,
        )
    if force and not backup_dir:
        raise MigrationError("force deletes the remaining custom resources together with their CRDs; set "
                             "backup_dir so that they are written there first")
    return names


def leftover_blockers(leftovers, crd_of_type):
    """One blocker per custom resource that deleting its CRD would delete."""
    return [
        blocker(rtype.kind, obj["metadata"].get("namespace"), obj["metadata"]["name"],
                "%s %s still exists and deleting CRD %s deletes it: delete or migrate it first, or set force: "
                "true with backup_dir to back it up and delete it with the CRD"
                % (rtype.kind, rtype.api_version, crd_of_type[type_key(rtype)]))
        for rtype, obj in leftovers
    ]


def route_blockers(routes, crd_of_type):
    """One blocker per HTTPRoute backendRef to a kind whose CRD is about to go."""
    found = []
    for route in routes:
        metadata = route["metadata"]
        for rule_index, ref_index, key, dummy in route_backends(route):
            crd_name = crd_of_type.get((key.group, key.kind))
            if crd_name:
                found.append(blocker(
                    api.HTTP_ROUTE.kind, metadata.get("namespace"), metadata["name"],
                    "rule %d backendRef %d points at %s; deleting CRD %s breaks this route: move its traffic to "
                    "the v1 pool (traffic_split) or remove that backendRef first" % (rule_index, ref_index, key, crd_name)))
    return found


def epp_blockers(deployments, crd_of_type):
    """One blocker per endpoint-picker container that serves a pool of a kind whose CRD is about to go."""
    found = []
    for deployment in deployments:
        metadata = deployment["metadata"]
        for served in served_pools(deployment):
            crd_name = crd_of_type.get((served.pool.group, served.pool.kind))
            if crd_name:
                reason = ("container %s is an endpoint picker serving %s (flag -%s); deleting CRD %s breaks it: "
                          "uninstall the preview Helm release or delete this Deployment first"
                          % (served.container, served.pool, served.flag, crd_name))
                found.append(blocker(api.DEPLOYMENT.kind, metadata.get("namespace"), metadata["name"], reason))
    return found


def _refusal(names, blockers):
    lines = ["- %s %s: %s" % (b["kind"], "/".join(filter(None, [b["namespace"], b["name"]])), b["reason"])
             for b in blockers]
    return "refusing to delete %s; nothing was changed. %d blocker%s:\n%s" % (
        ", ".join(names), len(blockers), "" if len(blockers) == 1 else "s", "\n".join(lines))


def _presence(cluster, names):
    present, absent = [], []
    for name in names:
        crd = cluster.get(api.CRD, name)
        if crd is None:
            absent.append(name)
        else:
            present.append(crd)
    return present, absent


def _diff(cluster, names, deleted):
    """Before: the inference CRDs (and any named CRD) present; after: what would remain."""
    scope = list(dict.fromkeys([t.crd_name for t in api.INFERENCE_CRDS] + names))
    before = sorted(name for name in scope if name in deleted or cluster.get(api.CRD, name) is not None)
    return {"before": {"crds": before}, "after": {"crds": [name for name in before if name not in deleted]}}


def remove_crds(cluster, crds=api.ALPHA_CRDS, force=False, backup_dir=None, wait_timeout=waiting.DEFAULT_TIMEOUT):
    """Delete the named CRDs once nothing uses them; see the crd_cleanup module for the contract.

    In check mode (``cluster.dry_run``) the deletes are server-side dry runs and
    no backup file is written; the result says what would be.
    """
    names = check_request(list(crds), force, backup_dir)
    present, absent = _presence(cluster, names)
    result = {"changed": False, "deleted": [], "absent": absent, "blockers": [], "backup_files": []}
    if not present:
        result["diff"] = _diff(cluster, names, [])
        return result

    crd_of_type = dict((type_key(crd_resource_type(crd)), crd["metadata"]["name"]) for crd in present)
    leftovers = [(rtype, obj) for rtype in (crd_resource_type(crd) for crd in present)
                 for obj in cluster.list(rtype) or []]
    leftover = leftover_blockers(leftovers, crd_of_type)
    # Only the routes and Deployments that block are kept: memory follows the blockers, not the cluster.
    references = (
        route_blockers(cluster.list(api.HTTP_ROUTE, keep=lambda r: route_blockers([r], crd_of_type)) or [],
                       crd_of_type)
        + epp_blockers(cluster.list(api.DEPLOYMENT, keep=lambda d: epp_blockers([d], crd_of_type)) or [],
                       crd_of_type))
    refusing = references + ([] if force else leftover)
    if refusing:
        raise MigrationError(_refusal([crd["metadata"]["name"] for crd in present], refusing),
                             blockers=refusing, absent=absent)

    if backup_dir:
        written = write_backup(backup_dir, [(api.CRD, crd) for crd in present] + leftovers, BACKUP_KIND,
                               cluster.server_version(), scope={"crds": names}, dry_run=cluster.dry_run,
                               cluster_uid=cluster_identity(cluster))
        result["backup_files"] = written["files"]

    if cluster.dry_run:
        # No DELETE at all in check mode: the API server ignores a dryRun query parameter on a DELETE
        # that carries DeleteOptions in its body (it reads only the body), and a CRD delete is not undone.
        deleted = [crd["metadata"]["name"] for crd in present]
    else:
        deleted = [crd["metadata"]["name"] for crd in present
                   if cluster.delete(api.CRD, crd["metadata"]["name"],
                                     resource_version=crd["metadata"].get("resourceVersion"))]
        waiting.wait_for(
            lambda: all(cluster.get(api.CRD, name) is None for name in deleted), wait_timeout,
            "CRDs %s to be gone; a custom resource with a finalizer keeps its CRD terminating (list them with "
            "kubectl get <plural>.<group> -A)" % ", ".join(deleted))
        cluster.forget_discovery()
    result.update(changed=bool(deleted), deleted=deleted, blockers=leftover if force else [],
                  diff=_diff(cluster, names, deleted))
    return result
