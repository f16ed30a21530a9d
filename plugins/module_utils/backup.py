# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Backups the migration can be rolled back from, and the restore that rolls it back.

A backup is a directory of plain YAML that a person can read and kubectl can
apply::

    index.yaml                                   what, where, when, cluster and collection versions
    <plural>.<group>/<namespace>_<name>.yaml     one object (cluster-scoped: <name>.yaml)
    helm-releases/<namespace>_<release>.v<N>.values.yaml / .manifest.yaml
                                                 decoded Helm releases, for people only

Objects are stored without the fields the API server owns (uid, resourceVersion,
status, a Service's clusterIP...), so that they can be created again as they are.
The folder of a kind is named after its plural and group because the two
InferencePool kinds differ only by group.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import copy
import datetime
import gzip
import json
import os
import traceback
from collections import namedtuple

try:
    import yaml
except ImportError:  # reported by require_yaml() when a backup is read or written
    yaml = None
    YAML_IMPORT_ERROR = traceback.format_exc()
else:
    YAML_IMPORT_ERROR = None

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.inference_gateway.migration.plugins.module_utils import api, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.conditions import crd_established
from ansible_collections.inference_gateway.migration.plugins.module_utils.epp import served_pools
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.refs import (
    backend_key,
    pool_key,
    route_backends,
    sends_traffic_to_alpha_pool,
    weight_of,
)

# Written into every index; galaxy.yml is the source, a unit test keeps the two equal.
COLLECTION_VERSION = "1.0.0"

INDEX_FILE = "index.yaml"
HELM_RELEASES_FOLDER = "helm-releases"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
PARTIAL_SUFFIX = ".partial"

SERVER_MANAGED_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
# The API server allocates these; a restored Service must get new ones.
SERVICE_ALLOCATED_FIELDS = ("clusterIP", "clusterIPs")

# Restore stages: the types must exist before their objects, the objects before
# Helm claims them again, and everything before traffic goes back.
STAGE_CRDS, STAGE_OBJECTS, STAGE_HELM_RELEASES, STAGE_ROUTES = range(4)
# Inside the objects stage, what a Deployment or a pool refers to comes first.
OBJECT_ORDER = (
    api.SERVICE_ACCOUNT,
    api.CONFIG_MAP,
    api.CLUSTER_ROLE,
    api.CLUSTER_ROLE_BINDING,
    api.ROLE,
    api.ROLE_BINDING,
    api.SERVICE,
    api.DEPLOYMENT,
    api.ALPHA_POOL,
    api.INFERENCE_MODEL,
    api.HEALTH_CHECK_POLICY,
    api.GCP_BACKEND_POLICY,
    api.CLUSTER_POD_MONITORING,
)

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


# --- objects and their files ---------------------------------------------------------


def strip(obj):
    """A copy of an object without the fields the API server owns."""
    clean = copy.deepcopy(obj)
    metadata = clean.get("metadata", {})
    for field in SERVER_MANAGED_METADATA:
        metadata.pop(field, None)
    clean.pop("status", None)
    if _type_key_of(clean) == (api.SERVICE.group, api.SERVICE.kind):
        for field in SERVICE_ALLOCATED_FIELDS:
            clean.get("spec", {}).pop(field, None)
    return clean


def creatable(obj):
    """What to POST to recreate a backed-up object.

    Owner references name their owner by uid; a recreated owner has a new uid,
    so keeping them would let the garbage collector delete what was restored.
    """
    body = strip(obj)
    body["metadata"].pop("ownerReferences", None)
    return body


def _type_key_of(obj):
    group = obj.get("apiVersion", "").rpartition("/")[0]
    return group, obj.get("kind")


def type_key(rtype):
    return rtype.group, rtype.kind


def folder_of(rtype):
    return "%s.%s" % (rtype.plural, rtype.group) if rtype.group else rtype.plural


def file_of(rtype, obj):
    """Path of an object's file relative to the backup directory."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    name = "%s_%s" % (namespace, metadata["name"]) if namespace else metadata["name"]
    return os.path.join(folder_of(rtype), name + ".yaml")


def describe_object(rtype, obj):
    metadata = obj["metadata"]
    return {"kind": rtype.kind, "api_version": rtype.api_version, "namespace": metadata.get("namespace"),
            "name": metadata["name"]}


def crd_resource_type(crd):
    """The ResourceType a CRD serves (at its storage version)."""
    spec = crd["spec"]
    versions = spec.get("versions") or []
    served = [v for v in versions if v.get("served", True)] or versions
    version = next((v["name"] for v in served if v.get("storage")), served[0]["name"])
    return api.ResourceType(spec["group"], version, spec["names"]["kind"], spec["names"]["plural"])


def require_yaml():
    if yaml is None:
        raise MigrationError(missing_required_lib("PyYAML"), exception=YAML_IMPORT_ERROR)
    return yaml


def _represent_str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def to_yaml(data):
    """YAML with multi-line strings (Helm manifests, embedded configs) as readable blocks."""
    library = require_yaml()
    dumper = type("LiteralDumper", (library.SafeDumper,), {})
    dumper.add_representer(str, _represent_str)
    return library.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False)


# --- Helm releases ----------------------------------------------------------------------


def decode_helm_release(secret):
    """The release record Helm keeps in a Secret: base64 (of the Secret) of base64 of gzipped JSON."""
    payload = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    return json.loads(payload.decode("utf-8"))


def helm_release_of(obj):
    """(namespace, name) of the Helm release that installed an object, or None."""
    annotations = obj["metadata"].get("annotations") or {}
    name = annotations.get(api.HELM_RELEASE_NAME_ANNOTATION)
    if not name:
        return None
    return annotations.get(api.HELM_RELEASE_NAMESPACE_ANNOTATION, obj["metadata"].get("namespace")), name


def helm_release_files(secret):
    """Relative path -> text of the values and manifest files of one release revision."""
    release = decode_helm_release(secret)
    revision = "%s_%s.v%s" % (release.get("namespace"), release["name"], release.get("version"))
    stem = os.path.join(HELM_RELEASES_FOLDER, revision)
    return {
        stem + ".values.yaml": to_yaml(release.get("config") or {}),
        stem + ".manifest.yaml": release.get("manifest") or "",
    }


# --- what a backup holds ------------------------------------------------------------------


class _Reader:
    """Lists each (type, namespace) once and keeps what was chosen, without duplicates."""

    def __init__(self, cluster, namespaces):
        self.cluster = cluster
        self.namespaces = namespaces
        self._lists = {}
        self.chosen = {}

    def list(self, rtype, namespace=None, label_selector=None):
        key = (rtype, namespace, label_selector)
        if key not in self._lists:
            self._lists[key] = self.cluster.list(rtype, namespace=namespace, label_selector=label_selector) or []
        return self._lists[key]

    def list_in_scope(self, rtype):
        if not self.namespaces:
            return self.list(rtype)
        return [obj for namespace in self.namespaces for obj in self.list(rtype, namespace)]

    def choose(self, rtype, obj):
        metadata = obj["metadata"]
        self.chosen[(rtype, metadata.get("namespace"), metadata["name"])] = (rtype, obj)


def _parse_pool_names(pools):
    parsed = set()
    for item in pools or []:
        namespace, slash, name = item.partition("/")
        if not slash or not namespace or not name:
            raise MigrationError("pools: %r is not namespace/name; write it as e.g. default/my-pool" % item)
        parsed.add((namespace, name))
    return parsed


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


def _model_targets(model, keys):
    pool_ref = model.get("spec", {}).get("poolRef") or {}
    key = backend_key(
        {"group": pool_ref.get("group") or api.MODEL_POOL_REF_DEFAULT_GROUP,
         "kind": pool_ref.get("kind") or api.ALPHA_POOL.kind, "name": pool_ref.get("name", "")},
        model["metadata"].get("namespace"),
    )
    return key in keys


def _owned_by(obj, release):
    return release is not None and helm_release_of(obj) == release


def _collect_pool_stack(reader, pool):
    """Choose what serves one alpha pool: its EPP, the EPP's identity and RBAC, GKE policies, Helm release."""
    key = pool_key(pool)
    namespace = pool["metadata"]["namespace"]
    release = helm_release_of(pool)
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
    namespace, name = release
    labels = dict(api.HELM_RELEASE_OWNER_LABELS, **{api.HELM_RELEASE_NAME_LABEL: name})
    selector = ",".join("%s=%s" % item for item in sorted(labels.items()))
    return [s for s in reader.list(api.SECRET, namespace, label_selector=selector)
            if s.get("type") == api.HELM_RELEASE_SECRET_TYPE]


def collect(cluster, namespaces=None, pools=None):
    """Every object the migration may change or delete, as (ResourceType, object) pairs.

    Scope: the alpha pools in ``namespaces`` (all by default), narrowed to
    ``pools`` ("namespace/name") when given; InferenceModels and HTTPRoutes
    that point at those pools, or at such pools that are gone while routes
    still reference them (every InferenceModel when no pool is named);
    each pool's EPP with its Service, ServiceAccount, ConfigMaps and RBAC (named
    after the EPP or installed by the pool's Helm release); GKE policies that
    target the pools; the Helm release Secrets of releases that own pools; and
    the alpha CRDs.
    """
    reader = _Reader(cluster, namespaces)
    selected, gone = _select_pools(reader, pools)
    keys = set(pool_key(p) for p in selected) | gone
    for pool in selected:
        reader.choose(api.ALPHA_POOL, pool)
        release = _collect_pool_stack(reader, pool)
        if release:
            for secret in _helm_release_secrets(reader, release):
                reader.choose(api.SECRET, secret)
    for model in reader.list_in_scope(api.INFERENCE_MODEL):
        if not pools or _model_targets(model, keys):
            reader.choose(api.INFERENCE_MODEL, model)
    for route in reader.list_in_scope(api.HTTP_ROUTE):
        if any(backend[2] in keys for backend in route_backends(route)):
            reader.choose(api.HTTP_ROUTE, route)
    for name in api.ALPHA_CRDS:
        crd = cluster.get(api.CRD, name)
        if crd is not None:
            reader.choose(api.CRD, crd)
    return list(reader.chosen.values())


# --- writing and reading a backup directory ---------------------------------------------------


def _timestamped_directory(dest, when):
    stamp = when.strftime(TIMESTAMP_FORMAT)
    candidate = os.path.join(dest, stamp)
    serial = 1
    while os.path.exists(candidate) or os.path.exists(candidate + PARTIAL_SUFFIX):
        candidate = os.path.join(dest, "%s-%d" % (stamp, serial))
        serial += 1
    return candidate


def count_by_kind(items):
    counts = {}
    for rtype, dummy in items:
        counts[rtype.kind] = counts.get(rtype.kind, 0) + 1
    return counts


def build_index(items, what, path, when, cluster_version, scope=None, human_files=()):
    """The index.yaml of a backup: what it holds and where, when, from which cluster, by which collection."""
    return {
        "what": what,
        "where": path,
        "when": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cluster": {"server_version": (cluster_version or {}).get("gitVersion"),
                    "platform": (cluster_version or {}).get("platform")},
        "collection": {"name": "inference_gateway.migration", "version": COLLECTION_VERSION},
        "scope": scope or {},
        "counts": count_by_kind(items),
        "objects": [
            dict(describe_object(rtype, obj), resource=rtype.plural, file=file_of(rtype, obj))
            for rtype, obj in sorted(items, key=restore_rank)
        ],
        "helm_release_files": sorted(human_files),
    }


def write_backup(dest, items, what, cluster_version, scope=None, now=None, dry_run=False):
    """Write ``items`` under a new ``<dest>/<UTC timestamp>/`` directory; return where and what.

    The files go to a ``.partial`` directory first, renamed when complete, so a
    directory without that suffix is always a whole backup. With ``dry_run``
    nothing is written and the result says what would be.
    """
    when = now or datetime.datetime.now(datetime.timezone.utc)
    root = os.path.abspath(_timestamped_directory(dest, when))
    files = dict((file_of(rtype, obj), to_yaml(strip(obj))) for rtype, obj in items)
    human_files = {}
    for rtype, obj in items:
        if obj.get("type") == api.HELM_RELEASE_SECRET_TYPE:
            human_files.update(helm_release_files(obj))
    files.update(human_files)
    files[INDEX_FILE] = to_yaml(build_index(items, what, root, when, cluster_version, scope, human_files))
    if not dry_run:
        partial = root + PARTIAL_SUFFIX
        for relative, text in files.items():
            target = os.path.join(partial, relative)
            if not os.path.isdir(os.path.dirname(target)):
                os.makedirs(os.path.dirname(target))
            with open(target, "w") as stream:
                stream.write(text)
        os.rename(partial, root)
    return {
        "path": root,
        "index": os.path.join(root, INDEX_FILE),
        "files": sorted(os.path.join(root, relative) for relative in files),
        "objects": count_by_kind(items),
    }


def make_backup(cluster, dest, namespaces=None, pools=None, now=None):
    """migration_backup: collect and write; nothing is written when the cluster holds nothing to back up."""
    items = collect(cluster, namespaces, pools)
    if not items:
        return {"changed": False, "path": None, "index": None, "objects": {},
                "diff": {"before": {"backup": None}, "after": {"backup": None}}}
    scope = {"namespaces": list(namespaces) if namespaces else "all", "pools": list(pools) if pools else "all"}
    written = write_backup(dest, items, "migration_backup", cluster.server_version(), scope, now,
                           dry_run=cluster.dry_run)
    return {"changed": True, "path": written["path"], "index": written["index"], "objects": written["objects"],
            "diff": {"before": {"backup": None}, "after": {"backup": written["path"], "objects": written["objects"]}}}


def _resource_type_of(entry):
    group, dummy, version = entry["api_version"].rpartition("/")
    return api.ResourceType(group, version, entry["kind"], entry["resource"])


def read_backup(path):
    """(index, [(ResourceType, object)]) of a backup directory."""
    index_path = os.path.join(path, INDEX_FILE)
    if not os.path.isfile(index_path):
        raise MigrationError("%s has no %s: give path the directory migration_backup (or crd_cleanup) wrote, "
                             "e.g. <dest>/<timestamp>" % (path, INDEX_FILE))
    library = require_yaml()
    with open(index_path) as stream:
        index = library.safe_load(stream)
    items = []
    for entry in index.get("objects") or []:
        with open(os.path.join(path, entry["file"])) as stream:
            obj = library.safe_load(stream)
        items.append((_resource_type_of(entry), obj))
    return index, items


class RemovedPool(namedtuple("RemovedPool", ["backup", "pool", "models"])):
    """A preview pool as the newest backup holding it saw it, with the InferenceModels that pointed at it."""

    __slots__ = ()


def _whole_backups_newest_first(dest):
    if not os.path.isdir(dest):
        return []
    names = [name for name in os.listdir(dest)
             if not name.endswith(PARTIAL_SUFFIX) and os.path.isfile(os.path.join(dest, name, INDEX_FILE))]
    # Names are UTC timestamps (a "-<n>" suffix for a second backup in the same second), so they sort by time.
    return [os.path.join(dest, name) for name in sorted(names, reverse=True)]


def removed_pools_in_backups(dest, keys):
    """{BackendKey: RemovedPool} for each preview pool key that some backup under ``dest`` holds.

    A run interrupted between removing a preview pool and switching its routes
    leaves routes pointing at a pool that is gone; the newest backup holding it
    is what the migration saw before it started, and enough to finish.
    """
    wanted = set(key for key in keys if key.group == api.ALPHA_GROUP)
    found = {}
    library = require_yaml()

    def load(path, entry):
        with open(os.path.join(path, entry["file"])) as stream:
            return library.safe_load(stream)

    for path in _whole_backups_newest_first(dest):
        if wanted <= set(found):
            break
        with open(os.path.join(path, INDEX_FILE)) as stream:
            entries = (library.safe_load(stream) or {}).get("objects") or []
        for entry in entries:
            if entry.get("api_version") != api.ALPHA_POOL.api_version or entry.get("kind") != api.ALPHA_POOL.kind:
                continue
            key = pool_key({"apiVersion": entry["api_version"],
                            "metadata": {"namespace": entry.get("namespace"), "name": entry["name"]}})
            if key not in wanted or key in found:
                continue
            models = [model for model in (load(path, e) for e in entries
                                          if e.get("kind") == api.INFERENCE_MODEL.kind
                                          and e.get("namespace") == key.namespace)
                      if _model_targets(model, set([key]))]
            found[key] = RemovedPool(path, load(path, entry), models)
    return found


# --- restoring ----------------------------------------------------------------------------------


def restore_stage(rtype, obj):
    if type_key(rtype) == type_key(api.CRD):
        return STAGE_CRDS
    if type_key(rtype) == type_key(api.HTTP_ROUTE):
        return STAGE_ROUTES
    if obj.get("type") == api.HELM_RELEASE_SECRET_TYPE:
        return STAGE_HELM_RELEASES
    return STAGE_OBJECTS


def restore_rank(item):
    """Sort key that puts a backup in restore order."""
    rtype, obj = item
    order = [type_key(t) for t in OBJECT_ORDER]
    position = order.index(type_key(rtype)) if type_key(rtype) in order else len(order)
    metadata = obj["metadata"]
    return restore_stage(rtype, obj), position, rtype.kind, metadata.get("namespace") or "", metadata["name"]


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
        endpoints.append({"namespace": namespace, "name": parent["name"],
                          "url": _gateway_url(gateway, parent) if gateway else None})
    return endpoints


def _gateway_url(gateway, parent):
    addresses = gateway.get("status", {}).get("addresses") or []
    listeners = gateway.get("spec", {}).get("listeners") or []
    chosen = [l for l in listeners if l.get("name") == parent.get("sectionName")] if parent.get("sectionName") else []
    chosen = chosen or [l for l in listeners if parent.get("port") and l.get("port") == parent.get("port")] or listeners
    if not addresses or not chosen:
        return None
    scheme = "https" if chosen[0].get("protocol") == "HTTPS" else "http"
    return "%s://%s:%s" % (scheme, addresses[0]["value"], chosen[0]["port"])


def restore(cluster, path, route_to_alpha=True, wait_timeout=waiting.DEFAULT_TIMEOUT):
    """Bring back what a backup holds: CRDs (waited Established), missing objects, Helm releases, routes.

    Existing objects are left alone except for their migration-owned parts
    (MIGRATION_OWNED_FIELDS), which are put back from the backup. With
    ``route_to_alpha`` the routes get back the backendRefs their alpha-pool rules
    had; without it routes are not touched. A second run changes nothing.
    """
    index, items = read_backup(path)
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
