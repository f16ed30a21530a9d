# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Removing the preview stacks of migrated pools, all pools at once.

Every Helm release that owns a preview pool is uninstalled at the same time (each ``helm uninstall``
waits for its own resources), the preview objects Helm does not own are deleted meanwhile, and one
wait follows until every object is gone. So removing N stacks costs about one removal, not N.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, helm, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import helm_release


def stack_refs(pool):
    """(type, namespace, name) of the preview objects the seed's manual path removes for one detected pool:
    its InferenceModels, the EPP Deployment and Service, and the pool."""
    namespace = pool["namespace"]
    refs = [(api.INFERENCE_MODEL, namespace, m["name"]) for m in pool.get("models") or []]
    epp = pool.get("epp") or {}
    if epp.get("deployment"):
        refs.append((api.DEPLOYMENT, namespace, epp["deployment"]))
    if epp.get("service_found"):
        refs.append((api.SERVICE, namespace, pool["extension_ref"]["name"]))
    refs.append((api.ALPHA_POOL, namespace, pool["name"]))
    return refs


def _ref_name(ref):
    rtype, namespace, name = ref
    return "%s %s/%s" % (rtype.kind, namespace, name)


def _distinct(items, key):
    seen = {}
    for item in items:
        seen.setdefault(key(item), item)
    return [seen[k] for k in sorted(seen)]


def _present(cluster, refs):
    """[(ref, live object)] of the refs that exist."""
    found = []
    for ref in refs:
        rtype, namespace, name = ref
        live = cluster.get(rtype, name, namespace)
        if live is not None:
            found.append((ref, live))
    return found


def remove_stacks(cluster, pools, uninstall, wait_timeout=waiting.DEFAULT_TIMEOUT):
    """Remove the preview stack of every pool in ``pools`` (detected preview pool records); see the
    preview_stack_removal module for the contract. ``uninstall(release)`` runs ``helm uninstall`` of one
    release ({namespace, name}) and raises MigrationError when it fails; it is called from worker threads.

    In check mode (``cluster.dry_run``) nothing is uninstalled or deleted; the result says what would be.
    """
    releases = _distinct([p["helm_release"] for p in pools if p.get("helm_release")], helm.release_label)
    refs = _distinct([ref for pool in pools for ref in stack_refs(pool)], _ref_name)
    installed = [release for release in releases if helm.release_secrets(cluster, release)]
    present = _present(cluster, refs)
    uninstalling = set(helm.release_label(release) for release in installed)

    def owned_by_uninstall(live):
        owner = helm_release(live)
        return owner is not None and helm.release_label(owner) in uninstalling

    before = {"helm_releases": [helm.release_label(r) for r in installed],
              "objects": [_ref_name(ref) for ref, _live in present]}
    result = {"changed": bool(installed or present), "uninstalled": before["helm_releases"],
              "deleted": [_ref_name(ref) for ref, live in present if not owned_by_uninstall(live)],
              "diff": {"before": before, "after": {"helm_releases": [], "objects": []}}}
    if cluster.dry_run or not result["changed"]:
        return result

    def delete(refs):
        return [ref for ref in refs if cluster.delete(ref[0], ref[2], ref[1])]

    deleted, failures = helm.for_each_release(
        uninstall, installed, lambda: delete([ref for ref, live in present if not owned_by_uninstall(live)]))
    if failures:
        raise MigrationError(
            "helm uninstall failed for %s; the other preview stacks were removed. Fix the cause and run again "
            "(the run starts where it stopped)." % helm.failures_message(failures),
            uninstalled=[name for name in before["helm_releases"] if name not in failures],
            deleted=[_ref_name(ref) for ref in deleted])
    # An object a release was expected to own but did not (a changed chart, an edited annotation) is left by Helm.
    deleted += delete([ref for ref, live in present if owned_by_uninstall(live)
                       and cluster.get(ref[0], ref[2], ref[1]) is not None])
    gone = [ref for ref, _live in present]
    waiting.wait_for(lambda: not _present(cluster, gone), wait_timeout,
                     "the preview objects %s to be gone (an object with a finalizer stays until its controller "
                     "removes it)" % ", ".join(_ref_name(ref) for ref in gone))
    result["deleted"] = [_ref_name(ref) for ref in deleted]
    return result
