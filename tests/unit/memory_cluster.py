"""An in-memory stand-in for module_utils.cluster.Cluster, and a preview stack to fill it with.

The one API server of the unit tests. It keeps the parts of API-server behaviour the product
relies on: custom types are served only while their CRD exists, deleting a CRD deletes its
objects, finalizers hold a deletion, writes check resourceVersion, a replace bumps the
generation when the spec changes and keeps the stored status, dry runs persist nothing.
Tests play the other actors through it: another writer (`edit`, `before_write`,
`conflicts_to_raise`), a controller writing status (`on_get`, `live`), a refusing server
(`errors`), access reviews (`allowed_verbs`) and the server version. Lists page as the API
server pages them, through the product's own paging loop (`cluster.paged`): every page is one
recorded "list" request, a continue token reads on from a snapshot taken by the first page, and
`expire_continue_tokens` makes continued requests answer 410 Gone.
"""

import base64
import copy
import gzip
import json

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import ClusterError, Conflict, \
    describe, paged

from support import ALPHA, ALPHA_EPP, BASE_MODEL, GA, GATEWAY_NAME, MODEL_SERVER_LABELS, NAMESPACE, ROUTE

BUILTIN_TYPES = (
    api.CRD, api.DEPLOYMENT, api.SERVICE, api.SERVICE_ACCOUNT, api.CONFIG_MAP, api.SECRET, api.ROLE,
    api.ROLE_BINDING, api.CLUSTER_ROLE, api.CLUSTER_ROLE_BINDING, api.HTTP_ROUTE, api.GATEWAY,
    api.HEALTH_CHECK_POLICY, api.GCP_BACKEND_POLICY, api.CLUSTER_POD_MONITORING,
)
SERVER_VERSION = {"gitVersion": "v1.33.5-gke.1080000", "platform": "linux/amd64"}


class MemoryCluster:
    def __init__(self, *objects, dry_run=False, server_version=None, allowed_verbs=None):
        """``objects`` are (type, body) pairs to store; ``allowed_verbs`` None allows every access review."""
        self.dry_run = dry_run
        self.objects = {}
        self.calls = []  # every request, in order: (verb, kind, namespace, name)
        self.writes = []  # the writes the server accepted: (verb, kind, namespace, name)
        self.errors = {}  # verb -> ClusterError raised by every request of that verb
        self.conflicts_to_raise = 0  # how many replaces lose a race to another writer
        self.before_write = None  # called with (cluster, verb) before a create or replace is judged: another writer
        self.on_get = None  # called with (type, stored object) before a read returns it: a controller
        self._server_version = server_version or SERVER_VERSION
        self.allowed_verbs = allowed_verbs
        self.expire_continue_tokens = 0  # how many continued list requests answer 410 Gone
        self.interruptions = []  # as Cluster's: calls that answered only after the API server had not (none here)
        self._list_snapshots = []  # what each paged list saw at its first page
        self._version = 0
        for rtype, body in objects:
            self.add(rtype, body)

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

    def live(self, rtype, name, namespace=None):
        """The stored object itself, for a test to change as a controller would (status, finalizers)."""
        return self.objects[_key(rtype, namespace, name)]

    def edit(self, rtype, name, namespace, change):
        """Another writer's successful read-modify-write: ``change`` edits the object in place."""
        body = copy.deepcopy(self.live(rtype, name, namespace))
        change(body)
        self._store(rtype, self._as_written(rtype, body))

    def requests(self, verb):
        return [call for call in self.calls if call[0] == verb]

    def _store(self, rtype, body):
        self._version += 1
        metadata = body.setdefault("metadata", {})
        metadata["resourceVersion"] = str(self._version)
        metadata.setdefault("uid", "uid-%d" % self._version)
        metadata.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        metadata.setdefault("generation", 1)
        if rtype == api.CRD:
            body["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
        if rtype == api.SERVICE:
            body.setdefault("spec", {}).setdefault("clusterIP", "10.0.0.%d" % self._version)
        self.objects[_key(rtype, metadata.get("namespace"), metadata["name"])] = body

    def _as_written(self, rtype, body):
        """What a write of ``body`` leaves: the stored status (a subresource), the generation bumped on a spec change."""
        live = self.live(rtype, body["metadata"]["name"], body["metadata"].get("namespace"))
        written = copy.deepcopy(body)
        if "status" in live:
            written["status"] = copy.deepcopy(live["status"])
        generation = live["metadata"]["generation"]
        written["metadata"]["generation"] = generation + 1 if written.get("spec") != live.get("spec") else generation
        return written

    def _request(self, verb, rtype, namespace=None, name=None):
        self.calls.append((verb, rtype.kind if rtype else None, namespace, name))
        if verb in self.errors:
            raise self.errors[verb]

    # --- the Cluster interface --------------------------------------------------------

    def served(self, rtype):
        if rtype in BUILTIN_TYPES:
            return True
        return any(crd["spec"]["group"] == rtype.group and crd["spec"]["names"]["plural"] == rtype.plural
                   for crd in self._items(api.CRD))

    def forget_discovery(self):
        pass

    def server_version(self):
        self._request("version", None)
        return dict(self._server_version)

    def _items(self, rtype, namespace=None):
        return [obj for (group, plural, ns, dummy), obj in sorted(self.objects.items())
                if (group, plural) == (rtype.group, rtype.plural) and (namespace is None or ns == namespace)]

    def list(self, rtype, namespace=None, label_selector=None, keep=None):
        if not self.served(rtype):
            self._request("list", rtype, namespace)
            return None
        wanted = dict(pair.split("=", 1) for pair in label_selector.split(",")) if label_selector else {}

        def fetch_page(limit, token):
            self._request("list", rtype, namespace)
            if token is None:
                self._list_snapshots.append([obj for obj in self._items(rtype, namespace) if all(
                    (obj["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())])
                snapshot, start = len(self._list_snapshots) - 1, 0
            else:
                if self.expire_continue_tokens:
                    self.expire_continue_tokens -= 1
                    raise ClusterError("GET %s failed: The provided continue parameter is too old" % rtype.plural,
                                       status=410)
                snapshot, start = (int(part) for part in token.split(":"))
            matching = self._list_snapshots[snapshot]
            end = start + limit
            return ([copy.deepcopy(obj) for obj in matching[start:end]],
                    "%d:%d" % (snapshot, end) if end < len(matching) else None)

        return paged(fetch_page, describe(rtype), keep)

    def get(self, rtype, name, namespace=None):
        self._request("get", rtype, namespace, name)
        return self._read(rtype, name, namespace)

    def _read(self, rtype, name, namespace):
        obj = self.objects.get(_key(rtype, namespace, name))
        if obj is not None and self.on_get:
            self.on_get(rtype, obj)
        return copy.deepcopy(obj)

    def create(self, rtype, body):
        metadata = body["metadata"]
        if self.before_write:
            self.before_write(self, "create")
        self._request("create", rtype, metadata.get("namespace"), metadata["name"])
        if not self.served(rtype):
            raise ClusterError("POST %s: the server could not find the requested resource" % rtype.plural, status=404)
        if "resourceVersion" in metadata or "uid" in metadata:
            raise ClusterError("POST %s: resourceVersion should not be set on objects to be created" % rtype.plural,
                               status=422)
        if _key(rtype, metadata.get("namespace"), metadata["name"]) in self.objects:
            raise ClusterError("POST %s: already exists" % rtype.plural, status=409)
        self.writes.append(("create", rtype.kind, metadata.get("namespace"), metadata["name"]))
        if not self.dry_run:
            self._store(rtype, copy.deepcopy(body))
        return body

    def replace(self, rtype, body):
        metadata = body["metadata"]
        namespace, name = metadata.get("namespace"), metadata["name"]
        if self.before_write:
            self.before_write(self, "replace")
        self._request("replace", rtype, namespace, name)
        if _key(rtype, namespace, name) not in self.objects:
            raise ClusterError("PUT %s: not found" % rtype.plural, status=404)
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            self.edit(rtype, name, namespace, lambda obj: None)
        if self.live(rtype, name, namespace)["metadata"]["resourceVersion"] != metadata.get("resourceVersion"):
            raise Conflict("PUT: the object has been modified", status=409)
        self.writes.append(("replace", rtype.kind, namespace, name))
        written = self._as_written(rtype, body)
        if self.dry_run:
            written["metadata"]["resourceVersion"] = str(self._version + 1)
        else:
            self._store(rtype, written)
        return copy.deepcopy(written)

    def delete(self, rtype, name, namespace=None, resource_version=None, propagation_policy="Background"):
        # The real API server reads DeleteOptions from the body and ignores the dryRun query
        # parameter Cluster sends, so a "dry-run" delete really deletes.
        assert not self.dry_run, "a DELETE in check mode would really delete"
        self._request("delete", rtype, namespace, name)
        live = self.objects.get(_key(rtype, namespace, name))
        if live is None:
            return False
        if resource_version and live["metadata"]["resourceVersion"] != resource_version:
            raise Conflict("DELETE: precondition failed", status=409)
        self.writes.append(("delete", rtype.kind, namespace, name))
        if live["metadata"].get("finalizers"):
            # Held until a controller removes its finalizer, which no test plays.
            live["metadata"].setdefault("deletionTimestamp", "2026-01-01T00:00:00Z")
            return True
        del self.objects[_key(rtype, namespace, name)]
        if rtype == api.CRD:
            group, plural = live["spec"]["group"], live["spec"]["names"]["plural"]
            for key in [k for k in self.objects if k[:2] == (group, plural)]:
                del self.objects[key]
        return True

    def create_review(self, body):
        verb = body["spec"]["resourceAttributes"]["verb"]
        self._request("review", None, None, verb)
        return {"status": {"allowed": self.allowed_verbs is None or verb in self.allowed_verbs}}


def _key(rtype, namespace, name):
    return rtype.group, rtype.plural, namespace, name


# --- a preview (alpha) stack as the v0.3.0 chart and the upstream samples install it -------------

def crd(rtype):
    return {
        "metadata": {"name": rtype.crd_name},
        "spec": {"group": rtype.group, "scope": "Namespaced",
                 "names": {"kind": rtype.kind, "plural": rtype.plural, "listKind": rtype.kind + "List"},
                 "versions": [{"name": rtype.version, "served": True, "storage": True}]},
    }


def helm_metadata(name, namespace=NAMESPACE, release=ALPHA):
    metadata = {"name": name, "labels": {api.MANAGED_BY_LABEL: api.HELM_MANAGED_BY_VALUE},
                "annotations": {api.HELM_RELEASE_NAME_ANNOTATION: release,
                                api.HELM_RELEASE_NAMESPACE_ANNOTATION: namespace}}
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def helm_release_secret(release=ALPHA, namespace=NAMESPACE, revision=1, values=None, manifest="kind: X\n",
                        chart_version="v0.3.0", status="deployed"):
    record = {"name": release, "namespace": namespace, "version": revision, "config": values or {},
              "manifest": manifest, "info": {"status": status},
              "chart": {"metadata": {"name": "inferencepool", "version": chart_version}}}
    encoded = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    return {
        "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (release, revision), "namespace": namespace,
                     "labels": dict(api.HELM_RELEASE_OWNER_LABELS, name=release, status=status,
                                    version=str(revision))},
        "type": api.HELM_RELEASE_SECRET_TYPE,
        "data": {"release": base64.b64encode(encoded).decode()},
    }


def alpha_pool(name=ALPHA, namespace=NAMESPACE, epp=ALPHA_EPP):
    pool = {"metadata": helm_metadata(name, namespace),
            "spec": {"targetPortNumber": 8000, "selector": dict(MODEL_SERVER_LABELS),
                     "extensionRef": {"name": epp}}}
    return pool


def epp_deployment(name=ALPHA_EPP, namespace=NAMESPACE, args=None):
    return {
        "metadata": helm_metadata(name, namespace),
        "spec": {"replicas": 1, "selector": {"matchLabels": {"inferencepool": name}},
                 "template": {"metadata": {"labels": {"inferencepool": name}},
                              "spec": {"serviceAccountName": name,
                                       "containers": [{"name": "epp", "image": "epp:v0.3.0",
                                                       "args": args or ["-poolName", ALPHA, "-poolNamespace",
                                                                        namespace, "-v", "3", "-grpcPort", "9002"]}]}}},
    }


def inference_model(name, model_name, pool=ALPHA, namespace=NAMESPACE):
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"modelName": model_name, "criticality": "Standard", "poolRef": {"name": pool}}}


def http_route(backend_refs, name=ROUTE, namespace=NAMESPACE, extra_rules=()):
    return {
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"parentRefs": [{"group": api.GATEWAY.group, "kind": api.GATEWAY.kind, "name": GATEWAY_NAME}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            "backendRefs": backend_refs, "timeouts": {"request": "300s"}}] + list(extra_rules)},
    }


def alpha_ref(name=ALPHA, weight=1):
    return {"group": api.ALPHA_GROUP, "kind": api.ALPHA_POOL.kind, "name": name, "weight": weight}


def ga_ref(name=GA, weight=1):
    return {"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "name": name, "weight": weight}


def policy(name=ALPHA, namespace=NAMESPACE, group=api.ALPHA_GROUP):
    return {"metadata": helm_metadata(name, namespace),
            "spec": {"targetRef": {"group": group, "kind": api.ALPHA_POOL.kind, "name": name}}}


def alpha_stack(cluster):
    """What scenario alpha-basic installs, with the objects a backup must find."""
    for rtype in (api.ALPHA_POOL, api.INFERENCE_MODEL):
        cluster.add(api.CRD, crd(rtype))
    cluster.add(api.ALPHA_POOL, alpha_pool())
    cluster.add(api.DEPLOYMENT, epp_deployment())
    cluster.add(api.SERVICE, {"metadata": helm_metadata(ALPHA_EPP), "spec": {
        "type": "ClusterIP", "clusterIPs": ["10.0.0.9"], "selector": {"inferencepool": ALPHA_EPP},
        "ports": [{"name": "grpc-ext-proc", "port": 9002}]}})
    cluster.add(api.SERVICE_ACCOUNT, {"metadata": helm_metadata(ALPHA_EPP)})
    cluster.add(api.CLUSTER_ROLE, {"metadata": helm_metadata(ALPHA_EPP, namespace=None), "rules": []})
    cluster.add(api.CLUSTER_ROLE_BINDING, {
        "metadata": {"name": ALPHA_EPP}, "roleRef": {"kind": "ClusterRole", "name": ALPHA_EPP},
        "subjects": [{"kind": "ServiceAccount", "name": ALPHA_EPP, "namespace": NAMESPACE}]})
    cluster.add(api.HEALTH_CHECK_POLICY, policy())
    cluster.add(api.GCP_BACKEND_POLICY, policy())
    monitoring = helm_metadata("%s-%s" % (NAMESPACE, ALPHA), namespace=None)
    monitoring["annotations"][api.HELM_RELEASE_NAMESPACE_ANNOTATION] = NAMESPACE
    cluster.add(api.CLUSTER_POD_MONITORING, {"metadata": monitoring, "spec": {}})
    cluster.add(api.SECRET, helm_release_secret(values={"provider": {"name": "gke"}}))
    cluster.add(api.INFERENCE_MODEL, inference_model("food-review", "food-review"))
    cluster.add(api.INFERENCE_MODEL, inference_model("base-model", BASE_MODEL))
    cluster.add(api.HTTP_ROUTE, http_route([alpha_ref()]))
    cluster.add(api.GATEWAY, {"metadata": {"name": GATEWAY_NAME, "namespace": NAMESPACE},
                              "spec": {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
                              "status": {"addresses": [{"type": "IPAddress", "value": "127.0.10.1"}]}})
    # Not part of the stack: things a backup must leave out.
    cluster.add(api.DEPLOYMENT, {"metadata": {"name": "vllm-llama3-8b-instruct", "namespace": NAMESPACE},
                                 "spec": {"template": {"spec": {"containers": [{"name": "vllm", "args": [
                                     "--model", BASE_MODEL]}]}}}})
    cluster.add(api.SERVICE_ACCOUNT, {"metadata": {"name": "default", "namespace": NAMESPACE}})
    cluster.add(api.SECRET, {"metadata": {"name": "unrelated", "namespace": NAMESPACE}, "type": "Opaque"})
    return cluster
