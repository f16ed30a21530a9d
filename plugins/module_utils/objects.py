# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Reading Kubernetes objects of the collection's kinds: names, types, references, with defaults explicit.

Every concern reads objects through these, so that a default (a poolRef
without a group, an extensionRef without a port) is applied the same way
everywhere, and a pure conversion needs nothing heavier than this module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError


def namespace_of(obj):
    return obj["metadata"].get("namespace")


def name_of(obj):
    return obj["metadata"]["name"]


def qualified_name(obj):
    """namespace/name of an object."""
    return "%s/%s" % (namespace_of(obj), name_of(obj))


def last_writer(obj, owning=(), ignore=api.FIELD_MANAGER):
    """Who last wrote the object, or with ``owning`` (a fieldsV1 path such as ("f:spec", "f:rules")) that part of
    it, other than ``ignore`` (the migration), from metadata.managedFields: "field manager <name> (<operation> at
    <time>)", or None when no other manager is recorded. Writes to the status subresource do not count."""
    def owns(entry):
        fields = entry.get("fieldsV1") or {}
        for step in owning:
            fields = fields.get(step)
            if fields is None:
                return False
        return True

    writers = [entry for entry in obj["metadata"].get("managedFields") or []
               if entry.get("manager") != ignore and not entry.get("subresource") and owns(entry)]
    if not writers:
        return None
    latest = max(writers, key=lambda entry: entry.get("time") or "")
    return "field manager %s (%s at %s)" % (latest.get("manager"), latest.get("operation"), latest.get("time"))


def identity(obj):
    """uid, creation time and last writer of an object, as detect reports them: enough to tell an object that was
    deleted and created again from the one that was there before."""
    metadata = obj["metadata"]
    return {"uid": metadata.get("uid"), "created": metadata.get("creationTimestamp"), "last_writer": last_writer(obj)}


def qualified(entry):
    """namespace/name of a detect entry (or anything with namespace and name keys)."""
    return "%s/%s" % (entry["namespace"], entry["name"])


def qualified_names(entries):
    return [qualified(entry) for entry in entries]


def distinct_refs(entries):
    """{namespace, name} of each entry, each once, in the order first seen."""
    found = []
    for entry in entries:
        ref = {"namespace": entry["namespace"], "name": entry["name"]}
        if ref not in found:
            found.append(ref)
    return found


def split_qualified(text, what="pool"):
    """(namespace, name) of a namespace/name the operator wrote; refuses anything else."""
    namespace, slash, name = str(text).partition("/")
    if not slash or not namespace or not name:
        raise MigrationError("%s %r must be written namespace/name (for example default/my-pool)" % (what, text))
    return namespace, name


def annotations_of(obj):
    return obj["metadata"].get("annotations") or {}


def labels_of(obj):
    return obj["metadata"].get("labels") or {}


def group_of(obj):
    """The API group of an object (or of a core ObjectReference) from its apiVersion; "" for the core group."""
    return (obj.get("apiVersion") or "").rpartition("/")[0]


def type_key(rtype):
    """What identifies a resource type across versions: (group, kind)."""
    return rtype.group, rtype.kind


def type_key_of(obj):
    return group_of(obj), obj.get("kind")


def is_type(obj, rtype):
    return type_key_of(obj) == type_key(rtype)


def helm_release(obj):
    """{name, namespace} of the Helm release that owns an object, from Helm's annotations; else None."""
    annotations = annotations_of(obj)
    name = annotations.get(api.HELM_RELEASE_NAME_ANNOTATION)
    if not name:
        return None
    return {"name": name, "namespace": annotations.get(api.HELM_RELEASE_NAMESPACE_ANNOTATION) or namespace_of(obj)}


def crd_resource_type(crd):
    """The ResourceType a CRD serves (at its storage version)."""
    spec = crd["spec"]
    versions = spec.get("versions") or []
    served = [v for v in versions if v.get("served", True)] or versions
    version = next((v["name"] for v in served if v.get("storage")), served[0]["name"])
    return api.ResourceType(spec["group"], version, spec["names"]["kind"], spec["names"]["plural"])


def extension_ref(alpha_pool):
    """An alpha pool's extensionRef with every default explicit (the port only defaults for a Service)."""
    ref = alpha_pool["spec"].get("extensionRef") or {}
    kind = ref.get("kind") or refs.DEFAULT_KIND
    port = ref.get("portNumber")
    if port is None and kind == refs.DEFAULT_KIND:
        port = api.DEFAULT_EPP_PORT
    return {
        "group": ref.get("group") or api.CORE_GROUP,
        "kind": kind,
        "name": ref.get("name"),
        "port": port,
        "failure_mode": ref.get("failureMode") or api.DEFAULT_FAILURE_MODE,
    }


def endpoint_picker_ref(ga_pool):
    """A v1 pool's endpointPickerRef with defaults explicit; None when it has none (optional from v1.6)."""
    ref = ga_pool["spec"].get("endpointPickerRef")
    if ref is None:
        return None
    return {
        "group": ref.get("group") or api.CORE_GROUP,
        "kind": ref.get("kind") or refs.DEFAULT_KIND,
        "name": ref.get("name"),
        "port": (ref.get("port") or {}).get("number"),
        "failure_mode": ref.get("failureMode") or api.DEFAULT_FAILURE_MODE,
    }


def model_pool_key(model):
    """The BackendKey of the pool an InferenceModel points at (an omitted group means the alpha group)."""
    pool_ref = (model.get("spec") or {}).get("poolRef") or {}
    return refs.BackendKey(pool_ref.get("group") or api.MODEL_POOL_REF_DEFAULT_GROUP,
                           pool_ref.get("kind") or api.ALPHA_POOL.kind, namespace_of(model), pool_ref.get("name"))


def lookup_ref(rtype, name, namespace=None):
    """apiVersion, kind, name (and namespace) of one object, as kubernetes.core's k8s_info takes them."""
    ref = {"api_version": rtype.api_version, "kind": rtype.kind, "name": name}
    if namespace:
        ref["namespace"] = namespace
    return ref


def object_stub(rtype, namespace, name):
    """A reference to one object as a manifest, enough for kubernetes.core.k8s with state=absent."""
    return {"apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": {"name": name, "namespace": namespace}}


def sorted_by_name(objects):
    """Objects in namespace, then name order, as every report lists them."""
    return sorted(objects, key=lambda o: (namespace_of(o) or "", name_of(o)))


def model_rewrites(model_name, target_models):
    """Whether serving the model relies on a name rewrite: a target names another model, or traffic is split."""
    return len(target_models) > 1 or any(target["name"] != model_name for target in target_models)
