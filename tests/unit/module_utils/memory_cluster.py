"""An in-memory stand-in for module_utils.cluster.Cluster, and a preview stack to fill it with.

It keeps the parts of API-server behaviour that backup, restore and cleanup
rely on: custom types are served only while their CRD exists, deleting a CRD
deletes its objects, writes check resourceVersion, dry runs persist nothing.
"""

import base64
import copy
import gzip
import json

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import ClusterError, Conflict

BUILTIN_TYPES = (
    api.CRD, api.DEPLOYMENT, api.SERVICE, api.SERVICE_ACCOUNT, api.CONFIG_MAP, api.SECRET, api.ROLE,
    api.ROLE_BINDING, api.CLUSTER_ROLE, api.CLUSTER_ROLE_BINDING, api.HTTP_ROUTE, api.GATEWAY,
    api.HEALTH_CHECK_POLICY, api.GCP_BACKEND_POLICY, api.CLUSTER_POD_MONITORING,
)
SERVER_VERSION = {"gitVersion": "v1.33.5-gke.1080000", "platform": "linux/amd64"}


class MemoryCluster:
    def __init__(self, dry_run=False):
        self.dry_run = dry_run
        self.objects = {}
        self.writes = []
        self.conflicts_to_raise = 0
        self._version = 0

    # --- test helpers -----------------------------------------------------------------

    def add(self, rtype, obj):
        body = copy.deepcopy(obj)
        body.setdefault("apiVersion", rtype.api_version)
        body.setdefault("kind", rtype.kind)
        self._store(rtype, body)
        return body

    def names(self, rtype, namespace=None):
        return sorted(name for (group, plural, ns, name) in self.objects
                      if (group, plural) == (rtype.group, rtype.plural) and (namespace is None or ns == namespace))

    def _store(self, rtype, body):
        self._version += 1
        metadata = body.setdefault("metadata", {})
        metadata["resourceVersion"] = str(self._version)
        metadata.setdefault("uid", "uid-%d" % self._version)
        metadata.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        if rtype == api.CRD:
            body["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
        if rtype == api.SERVICE:
            body.setdefault("spec", {}).setdefault("clusterIP", "10.0.0.%d" % self._version)
        self.objects[(rtype.group, rtype.plural, metadata.get("namespace"), metadata["name"])] = body

    # --- the Cluster interface --------------------------------------------------------

    def served(self, rtype):
        if rtype in BUILTIN_TYPES:
            return True
        return any(crd["spec"]["group"] == rtype.group and crd["spec"]["names"]["plural"] == rtype.plural
                   for crd in self._items(api.CRD))

    def forget_discovery(self):
        pass

    def server_version(self):
        return dict(SERVER_VERSION)

    def _items(self, rtype, namespace=None):
        return [obj for (group, plural, ns, dummy), obj in sorted(self.objects.items())
                if (group, plural) == (rtype.group, rtype.plural) and (namespace is None or ns == namespace)]

    def list(self, rtype, namespace=None, label_selector=None):
        if not self.served(rtype):
            return None
        wanted = dict(pair.split("=", 1) for pair in label_selector.split(",")) if label_selector else {}
        return [copy.deepcopy(obj) for obj in self._items(rtype, namespace)
                if all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]

    def get(self, rtype, name, namespace=None):
        obj = self.objects.get((rtype.group, rtype.plural, namespace, name))
        return copy.deepcopy(obj) if obj else None

    def create(self, rtype, body):
        metadata = body["metadata"]
        if not self.served(rtype):
            raise ClusterError("POST %s: the server could not find the requested resource" % rtype.plural, status=404)
        if "resourceVersion" in metadata or "uid" in metadata:
            raise ClusterError("POST %s: resourceVersion should not be set on objects to be created" % rtype.plural,
                               status=422)
        if self.get(rtype, metadata["name"], metadata.get("namespace")):
            raise ClusterError("POST %s: already exists" % rtype.plural, status=409)
        self.writes.append(("create", rtype.kind, metadata.get("namespace"), metadata["name"]))
        if not self.dry_run:
            self._store(rtype, copy.deepcopy(body))
        return body

    def replace(self, rtype, body):
        metadata = body["metadata"]
        live = self.get(rtype, metadata["name"], metadata.get("namespace"))
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            self.add(rtype, live)
            raise Conflict("PUT: the object has been modified", status=409)
        if live["metadata"]["resourceVersion"] != metadata.get("resourceVersion"):
            raise Conflict("PUT: the object has been modified", status=409)
        self.writes.append(("replace", rtype.kind, metadata.get("namespace"), metadata["name"]))
        if not self.dry_run:
            self._store(rtype, copy.deepcopy(body))
        return body

    def delete(self, rtype, name, namespace=None, resource_version=None, propagation_policy="Background"):
        # The real API server reads DeleteOptions from the body and ignores the dryRun query
        # parameter Cluster sends, so a "dry-run" delete really deletes.
        assert not self.dry_run, "a DELETE in check mode would really delete"
        live = self.get(rtype, name, namespace)
        if live is None:
            return False
        if resource_version and live["metadata"]["resourceVersion"] != resource_version:
            raise Conflict("DELETE: precondition failed", status=409)
        self.writes.append(("delete", rtype.kind, namespace, name))
        del self.objects[(rtype.group, rtype.plural, namespace, name)]
        if rtype == api.CRD:
            group, plural = live["spec"]["group"], live["spec"]["names"]["plural"]
            for key in [k for k in self.objects if k[:2] == (group, plural)]:
                del self.objects[key]
        return True


# --- a preview (alpha) stack as the v0.3.0 chart and the upstream samples install it -------------

NAMESPACE = "default"
RELEASE = "vllm-llama3-8b-instruct-preview"
EPP = RELEASE + "-epp"
ROUTE = "llm-route"
GATEWAY_NAME = "inference-gateway"


def crd(rtype):
    return {
        "metadata": {"name": rtype.crd_name},
        "spec": {"group": rtype.group, "scope": "Namespaced",
                 "names": {"kind": rtype.kind, "plural": rtype.plural, "listKind": rtype.kind + "List"},
                 "versions": [{"name": rtype.version, "served": True, "storage": True}]},
    }


def helm_metadata(name, namespace=NAMESPACE, release=RELEASE):
    metadata = {"name": name, "labels": {api.MANAGED_BY_LABEL: api.HELM_MANAGED_BY_VALUE},
                "annotations": {api.HELM_RELEASE_NAME_ANNOTATION: release,
                                api.HELM_RELEASE_NAMESPACE_ANNOTATION: namespace}}
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def helm_release_secret(release=RELEASE, namespace=NAMESPACE, revision=1, values=None, manifest="kind: X\n"):
    record = {"name": release, "namespace": namespace, "version": revision, "config": values or {},
              "manifest": manifest, "info": {"status": "deployed"}}
    encoded = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    return {
        "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (release, revision), "namespace": namespace,
                     "labels": dict(api.HELM_RELEASE_OWNER_LABELS, name=release, status="deployed",
                                    version=str(revision))},
        "type": api.HELM_RELEASE_SECRET_TYPE,
        "data": {"release": base64.b64encode(encoded).decode()},
    }


def alpha_pool(name=RELEASE, namespace=NAMESPACE, epp=EPP):
    pool = {"metadata": helm_metadata(name, namespace),
            "spec": {"targetPortNumber": 8000, "selector": {"app": "vllm-llama3-8b-instruct"},
                     "extensionRef": {"name": epp}}}
    return pool


def epp_deployment(name=EPP, namespace=NAMESPACE, args=None):
    return {
        "metadata": helm_metadata(name, namespace),
        "spec": {"replicas": 1, "selector": {"matchLabels": {"inferencepool": name}},
                 "template": {"metadata": {"labels": {"inferencepool": name}},
                              "spec": {"serviceAccountName": name,
                                       "containers": [{"name": "epp", "image": "epp:v0.3.0",
                                                       "args": args or ["-poolName", RELEASE, "-poolNamespace",
                                                                        namespace, "-v", "3", "-grpcPort", "9002"]}]}}},
    }


def inference_model(name, model_name, pool=RELEASE, namespace=NAMESPACE):
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"modelName": model_name, "criticality": "Standard", "poolRef": {"name": pool}}}


def http_route(backend_refs, name=ROUTE, namespace=NAMESPACE, extra_rules=()):
    return {
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"parentRefs": [{"group": api.GATEWAY.group, "kind": api.GATEWAY.kind, "name": GATEWAY_NAME}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            "backendRefs": backend_refs, "timeouts": {"request": "300s"}}] + list(extra_rules)},
    }


def alpha_ref(name=RELEASE, weight=1):
    return {"group": api.ALPHA_GROUP, "kind": api.ALPHA_POOL.kind, "name": name, "weight": weight}


def ga_ref(name="vllm-llama3-8b-instruct-ga", weight=1):
    return {"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "name": name, "weight": weight}


def policy(name=RELEASE, namespace=NAMESPACE, group=api.ALPHA_GROUP):
    return {"metadata": helm_metadata(name, namespace),
            "spec": {"targetRef": {"group": group, "kind": api.ALPHA_POOL.kind, "name": name}}}


def alpha_stack(cluster):
    """What scenario alpha-basic installs, with the objects a backup must find."""
    for rtype in (api.ALPHA_POOL, api.INFERENCE_MODEL):
        cluster.add(api.CRD, crd(rtype))
    cluster.add(api.ALPHA_POOL, alpha_pool())
    cluster.add(api.DEPLOYMENT, epp_deployment())
    cluster.add(api.SERVICE, {"metadata": helm_metadata(EPP), "spec": {
        "type": "ClusterIP", "clusterIPs": ["10.0.0.9"], "selector": {"inferencepool": EPP},
        "ports": [{"name": "grpc-ext-proc", "port": 9002}]}})
    cluster.add(api.SERVICE_ACCOUNT, {"metadata": helm_metadata(EPP)})
    cluster.add(api.CLUSTER_ROLE, {"metadata": helm_metadata(EPP, namespace=None), "rules": []})
    cluster.add(api.CLUSTER_ROLE_BINDING, {
        "metadata": {"name": EPP}, "roleRef": {"kind": "ClusterRole", "name": EPP},
        "subjects": [{"kind": "ServiceAccount", "name": EPP, "namespace": NAMESPACE}]})
    cluster.add(api.HEALTH_CHECK_POLICY, policy())
    cluster.add(api.GCP_BACKEND_POLICY, policy())
    monitoring = helm_metadata("%s-%s" % (NAMESPACE, RELEASE), namespace=None)
    monitoring["annotations"][api.HELM_RELEASE_NAMESPACE_ANNOTATION] = NAMESPACE
    cluster.add(api.CLUSTER_POD_MONITORING, {"metadata": monitoring, "spec": {}})
    cluster.add(api.SECRET, helm_release_secret(values={"provider": {"name": "gke"}}))
    cluster.add(api.INFERENCE_MODEL, inference_model("food-review", "food-review"))
    cluster.add(api.INFERENCE_MODEL, inference_model("base-model", "meta-llama/Llama-3.1-8B-Instruct"))
    cluster.add(api.HTTP_ROUTE, http_route([alpha_ref()]))
    cluster.add(api.GATEWAY, {"metadata": {"name": GATEWAY_NAME, "namespace": NAMESPACE},
                              "spec": {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
                              "status": {"addresses": [{"type": "IPAddress", "value": "127.0.10.1"}]}})
    # Not part of the stack: things a backup must leave out.
    cluster.add(api.DEPLOYMENT, {"metadata": {"name": "vllm-llama3-8b-instruct", "namespace": NAMESPACE},
                                 "spec": {"template": {"spec": {"containers": [{"name": "vllm", "args": [
                                     "--model", "meta-llama/Llama-3.1-8B-Instruct"]}]}}}})
    cluster.add(api.SERVICE_ACCOUNT, {"metadata": {"name": "default", "namespace": NAMESPACE}})
    cluster.add(api.SECRET, {"metadata": {"name": "unrelated", "namespace": NAMESPACE}, "type": "Opaque"})
    return cluster
