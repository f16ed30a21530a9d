# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""ReferenceGrants that let HTTPRoutes of other namespaces reach the pools being migrated.

A backendRef into another namespace is honoured only when a ReferenceGrant in the backend's
namespace allows it, and a grant names the API group it allows. A grant written for the
preview pools (group inference.networking.x-k8s.io) does not let the same routes reach the v1
pools, so the gateway would refuse the v1 backendRef (ResolvedRefs False, RefNotPermitted) the
moment phase 1 adds it. Before that, each such grant gets the v1 counterpart of its preview
entry; once the preview pools are gone, the preview entries that allowed only them go.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import split_qualified
from ansible_collections.inference_gateway.migration.plugins.module_utils.refs import grant_entry_allows


def _targets(grant):
    return (grant.get("spec") or {}).get("to") or []


def _is_pool_entry(entry, group):
    return entry.get("group") == group and entry.get("kind") == api.GA_POOL.kind


def _covers(entry, wanted):
    """Whether a grant entry already allows what ``wanted`` allows."""
    return grant_entry_allows(entry, wanted["group"], api.GA_POOL.kind, wanted.get("name"))


def v1_entries_missing(grant, v1_names):
    """The ``to`` entries a grant lacks to allow the v1 pools of the preview pools it allows.

    ``v1_names`` maps a migrated preview pool's name to its v1 pool's name, both in the grant's namespace.
    A preview entry without a name gets a v1 entry without a name; a named one, the v1 pool's name.
    """
    missing = []
    for entry in _targets(grant):
        if not _is_pool_entry(entry, api.ALPHA_GROUP):
            continue
        if not entry.get("name"):
            wanted = {"group": api.GA_GROUP, "kind": api.GA_POOL.kind}
        elif entry["name"] in v1_names:
            wanted = {"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "name": v1_names[entry["name"]]}
        else:
            continue
        if not any(_covers(existing, wanted) for existing in _targets(grant) + missing):
            missing.append(wanted)
    return missing


def preview_entries_spent(grant, v1_names, preview_pools_left):
    """The preview ``to`` entries of a grant that allow nothing any more: a named entry of a migrated pool that
    is gone, or an entry without a name when no preview pool is left in the namespace; each only when the grant
    allows the v1 counterpart, so no route loses a permission it still uses."""
    spent = []
    for entry in _targets(grant):
        if not _is_pool_entry(entry, api.ALPHA_GROUP):
            continue
        name = entry.get("name")
        if not name:
            if not preview_pools_left and any(_covers(e, {"group": api.GA_GROUP}) for e in _targets(grant)):
                spent.append(entry)
        elif name in v1_names and name not in preview_pools_left and any(
                _covers(e, {"group": api.GA_GROUP, "name": v1_names[name]}) for e in _targets(grant)):
            spent.append(entry)
    return spent


def _v1_names_by_namespace(pairs):
    """{namespace: {preview pool name: v1 pool name}} from pool pairs [{alpha, v1}] given as namespace/name."""
    by_namespace = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not pair.get("alpha") or not pair.get("v1"):
            raise MigrationError("pool pair %r has no alpha and v1 pool; pass the pairs the ga_stack role records "
                                 "(ga_stack_created)" % (pair,))
        alpha_namespace, alpha_name = split_qualified(pair["alpha"])
        v1_namespace, v1_name = split_qualified(pair["v1"])
        if alpha_namespace != v1_namespace:
            raise MigrationError("v1 pool %s is not in the namespace of preview pool %s: a ReferenceGrant allows "
                                 "references into its own namespace only, so give each v1 pool its preview pool's "
                                 "namespace" % (pair["v1"], pair["alpha"]))
        by_namespace.setdefault(alpha_namespace, {})[alpha_name] = v1_name
    return by_namespace


def _preview_pools_left(cluster, namespace):
    listed = cluster.list(api.ALPHA_POOL, namespace=namespace) if cluster.served(api.ALPHA_POOL) else None
    return set(pool["metadata"]["name"] for pool in listed or [])


def _update_grant(cluster, grant, v1_names, preview_left, remove_spent):
    """Write one grant's new ``to`` list; return (entries added, entries removed, the Written record)."""
    namespace, name = grant["metadata"].get("namespace"), grant["metadata"]["name"]
    what = "%s %s/%s" % (api.REFERENCE_GRANT.kind, namespace, name)
    outcome = {}

    def read():
        live = cluster.get(api.REFERENCE_GRANT, name, namespace)
        if live is None:
            raise MigrationError("%s was deleted while the migration was changing it; run again" % what)
        return live

    def change(live):
        planned = copy.deepcopy(live)
        added = v1_entries_missing(live, v1_names)
        planned.setdefault("spec", {})["to"] = _targets(live) + added
        removed = preview_entries_spent(planned, v1_names, preview_left) if remove_spent else []
        planned["spec"]["to"] = [entry for entry in planned["spec"]["to"] if entry not in removed]
        outcome.update(added=added, removed=removed)
        return planned if added or removed else None

    written = waiting.read_modify_write(read, change, lambda body: cluster.replace(api.REFERENCE_GRANT, body), what,
                                        live=grant)
    return outcome["added"], outcome["removed"], written


def update_grants(cluster, pairs, remove_spent_preview_entries=False):
    """Give every ReferenceGrant that allows a migrated preview pool the v1 counterpart of that entry, and with
    ``remove_spent_preview_entries`` drop the preview entries that allow nothing any more; return the module
    result. Each grant is written with its resourceVersion and re-planned after a lost race."""
    if not cluster.served(api.REFERENCE_GRANT):
        return {"changed": False, "grants": [], "diff": {"before": {}, "after": {}}}
    results, before, after = [], {}, {}
    for namespace, v1_names in sorted(_v1_names_by_namespace(pairs).items()):
        preview_left = _preview_pools_left(cluster, namespace) if remove_spent_preview_entries else set()
        for grant in cluster.list(api.REFERENCE_GRANT, namespace=namespace) or []:
            added, removed, written = _update_grant(cluster, grant, v1_names, preview_left,
                                                    remove_spent_preview_entries)
            if not added and not removed:
                continue
            key = "%s %s/%s" % (api.REFERENCE_GRANT.kind, namespace, grant["metadata"]["name"])
            before[key], after[key] = _targets(written.before), _targets(written.body)
            results.append({"namespace": namespace, "name": grant["metadata"]["name"], "added": added,
                            "removed": removed})
    return {"changed": bool(results), "grants": results, "diff": {"before": before, "after": after}}
