# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The backup directory: writing it, reading it, and the order its objects are restored in.

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

import copy
import datetime
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
from ansible_collections.inference_gateway.migration.plugins.module_utils import api, helm
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import ClusterError
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import model_pool_key, type_key, type_key_of
from ansible_collections.inference_gateway.migration.plugins.module_utils.refs import pool_key

# Written into every index; galaxy.yml is the source, a unit test keeps the two equal.
COLLECTION_VERSION = "1.0.0"

INDEX_FILE = "index.yaml"
HELM_RELEASES_FOLDER = "helm-releases"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
PARTIAL_SUFFIX = ".partial"
# A backup holds Helm release records, which are Secrets (values may carry credentials): only the owner
# may read it. Directories the backup creates are 0700, every file 0600, whatever the umask.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

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


# --- objects and their files ---------------------------------------------------------


def strip(obj):
    """A copy of an object without the fields the API server owns."""
    clean = copy.deepcopy(obj)
    metadata = clean.get("metadata", {})
    for field in SERVER_MANAGED_METADATA:
        metadata.pop(field, None)
    clean.pop("status", None)
    if type_key_of(clean) == (api.SERVICE.group, api.SERVICE.kind):
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


def helm_release_files(secret):
    """Relative path -> text of the values and manifest files of one release revision."""
    release = helm.decode_release(secret)
    revision = "%s_%s.v%s" % (release.get("namespace"), release["name"], release.get("version"))
    stem = os.path.join(HELM_RELEASES_FOLDER, revision)
    return {
        stem + ".values.yaml": to_yaml(release.get("config") or {}),
        stem + ".manifest.yaml": release.get("manifest") or "",
    }


def restore_stage(rtype, obj):
    if type_key(rtype) == type_key(api.CRD):
        return STAGE_CRDS
    if type_key(rtype) == type_key(api.HTTP_ROUTE):
        return STAGE_ROUTES
    if helm.is_release_secret(obj):
        return STAGE_HELM_RELEASES
    return STAGE_OBJECTS


def restore_rank(item):
    """Sort key that puts a backup in restore order."""
    rtype, obj = item
    order = [type_key(t) for t in OBJECT_ORDER]
    position = order.index(type_key(rtype)) if type_key(rtype) in order else len(order)
    metadata = obj["metadata"]
    return restore_stage(rtype, obj), position, rtype.kind, metadata.get("namespace") or "", metadata["name"]


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


def cluster_identity(cluster):
    """The UID of the cluster's kube-system namespace, which lives as long as the cluster; None when unreadable.

    Credentials that may not read namespaces still back up and restore: only the check that a backup is
    restored into the cluster it came from is skipped then.
    """
    try:
        namespace = cluster.get(api.NAMESPACE, "kube-system")
    except ClusterError:
        return None
    return ((namespace or {}).get("metadata") or {}).get("uid")


def build_index(items, what, path, when, cluster_version, scope=None, human_files=(), cluster_uid=None):
    """The index.yaml of a backup: what it holds and where, when, from which cluster, by which collection."""
    return {
        "what": what,
        "where": path,
        "when": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cluster": {"server_version": (cluster_version or {}).get("gitVersion"),
                    "platform": (cluster_version or {}).get("platform"),
                    "kube_system_uid": cluster_uid},
        "collection": {"name": "inference_gateway.migration", "version": COLLECTION_VERSION},
        "scope": scope or {},
        "counts": count_by_kind(items),
        "objects": [
            dict(describe_object(rtype, obj), resource=rtype.plural, file=file_of(rtype, obj))
            for rtype, obj in sorted(items, key=restore_rank)
        ],
        "helm_release_files": sorted(human_files),
    }


def _private_directories(path):
    """Create ``path`` and its missing parents owner-only (0700); existing directories keep their mode."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, PRIVATE_DIR_MODE)
        os.chmod(directory, PRIVATE_DIR_MODE)


def _write_private(target, text):
    """Write ``text`` to a new file only its owner can read (0600 from the start, not after the fact)."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.fchmod(descriptor, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)


def write_backup(dest, items, what, cluster_version, scope=None, now=None, dry_run=False, cluster_uid=None):
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
        if helm.is_release_secret(obj):
            human_files.update(helm_release_files(obj))
    files.update(human_files)
    index = build_index(items, what, root, when, cluster_version, scope, human_files, cluster_uid)
    files[INDEX_FILE] = to_yaml(index)
    if not dry_run:
        partial = root + PARTIAL_SUFFIX
        try:
            for relative, text in files.items():
                target = os.path.join(partial, relative)
                _private_directories(os.path.dirname(target))
                _write_private(target, text)
            os.rename(partial, root)
        except (IOError, OSError) as e:
            raise MigrationError("cannot write a backup under %s (%s): give dest (migration_backup_dest in the "
                                 "playbooks) a directory this user can write to. Nothing was changed." % (dest, e))
    return {
        "path": root,
        "index": os.path.join(root, INDEX_FILE),
        "files": sorted(os.path.join(root, relative) for relative in files),
        "objects": count_by_kind(items),
    }


def _resource_type_of(entry):
    group, dummy, version = entry["api_version"].rpartition("/")
    return api.ResourceType(group, version, entry["kind"], entry["resource"])


def backup_problems(path):
    """What makes ``path`` no whole backup (each a sentence naming it), or [] with its index when it is one."""
    index_path = os.path.join(path, INDEX_FILE)
    if not os.path.exists(path):
        return ["%s does not exist" % path], None
    if path.rstrip(os.sep).endswith(PARTIAL_SUFFIX):
        return ["%s is a backup that was never finished (its writer stopped before renaming it)" % path], None
    if not os.path.isdir(path):
        return ["%s is a file, not a backup directory" % path], None
    if not os.path.isfile(index_path):
        return ["%s has no %s, so it is no backup the collection wrote" % (path, INDEX_FILE)], None
    library = require_yaml()
    try:
        with open(index_path) as stream:
            index = library.safe_load(stream)
    except (IOError, OSError, library.YAMLError) as e:
        return ["%s cannot be read (%s)" % (index_path, e)], None
    if not isinstance(index, dict) or not isinstance(index.get("objects") or [], list):
        return ["%s is not an index the collection wrote" % index_path], None
    missing = [entry.get("file") for entry in index.get("objects") or []
               if not isinstance(entry, dict) or not os.path.isfile(os.path.join(path, str(entry.get("file"))))]
    if missing:
        return ["%s is incomplete: %s lists %s, which %s missing" % (
            path, INDEX_FILE, ", ".join(str(m) for m in missing), "is" if len(missing) == 1 else "are")], index
    return [], index


def read_backup(path):
    """(index, [(ResourceType, object)]) of a backup directory; a backup that is not whole is refused."""
    problems, index = backup_problems(path)
    if problems:
        raise MigrationError("%s: give path a whole backup directory that migration_backup (or crd_cleanup) wrote, "
                             "e.g. <dest>/<timestamp>. Nothing was changed." % "; ".join(problems))
    library = require_yaml()
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
                      if model_pool_key(model) == key]
            found[key] = RemovedPool(path, load(path, entry), models)
    return found
