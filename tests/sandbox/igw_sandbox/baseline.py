"""What a GKE cluster has before its user does anything, and getting back to it.

`install` puts the platform's objects in place; `snapshot` records every object
that exists right after `up`; `restore` removes whatever was added since.
"""

import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


from . import upstream
from .kube import dump_documents, identity, load_documents
from .waits import SandboxError, wait_until

MANIFESTS = Path(__file__).resolve().parent / "manifests"
NODE_COUNT = 2
GATEWAY_CLASSES = {
    "gke-l7-regional-external-managed": "Regional external Application Load Balancer (simulated)",
    "gke-l7-rilb": "Regional internal Application Load Balancer (simulated)",
}
SIMULATED_POLICY_KINDS = {"HealthCheckPolicy": "healthcheckpolicies", "GCPBackendPolicy": "gcpbackendpolicies"}
# GKE's addon manager owns the CRDs it installs; this is how such a CRD is labelled.
PLATFORM_MANAGED_LABELS = {"addonmanager.kubernetes.io/mode": "Reconcile"}
INVENTORY_NAMESPACE = "default"
# Derived objects: the apiserver or a controller makes and removes them along with
# the objects they belong to, so they are neither recorded nor deleted directly.
UNTRACKED_RESOURCES = {
    "events", "events.events.k8s.io", "apiservices.apiregistration.k8s.io", "ipaddresses.networking.k8s.io",
    "servicecidrs.networking.k8s.io", "namespaces",
}
LIST_ATTEMPTS = 3
RESTORE_TIMEOUT = 180
REDELETE_INTERVAL = 5


def _simulated_policy_crd(kind, plural):
    crd = load_documents(MANIFESTS / "gke-policy-crd.yaml")[0]
    crd["metadata"]["name"] = f"{plural}.{crd['spec']['group']}"
    crd["spec"]["names"] = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    return crd


def _gateway_classes():
    template = load_documents(MANIFESTS / "gatewayclass.yaml")[0]
    classes = []
    for name, description in GATEWAY_CLASSES.items():
        gateway_class = copy.deepcopy(template)
        gateway_class["metadata"]["name"] = name
        gateway_class["spec"]["description"] = description
        classes.append(gateway_class)
    return classes


def _nodes():
    template = load_documents(MANIFESTS / "node.yaml")[0]
    nodes = []
    for index in range(NODE_COUNT):
        node = copy.deepcopy(template)
        name = f"{template['metadata']['name']}-{index}"
        node["metadata"]["name"] = name
        node["metadata"]["labels"]["kubernetes.io/hostname"] = name
        nodes.append(node)
    return nodes


def platform_objects(flavour):
    """The platform's objects in the order they can be applied: CRDs first."""
    crds = [doc for path in upstream.gateway_api_standard_crds() for doc in load_documents(path)]
    crds += [_simulated_policy_crd(kind, plural) for kind, plural in SIMULATED_POLICY_KINDS.items()]
    crds += load_documents(upstream.cluster_pod_monitoring_crd())
    if flavour == "new":
        for crd in load_documents(upstream.inference_pool_v1_crd()):
            crd["metadata"].setdefault("labels", {}).update(PLATFORM_MANAGED_LABELS)
            crds.append(crd)
    return crds + _gateway_classes() + _nodes()


def install(kube, objects):
    """Server-side apply `objects`; CRDs go first, so objects of their kinds can follow."""
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    others = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    for batch in (crds, others):
        if batch:
            kube.apply(batch, server_side=True)


def wait_settled(kube, timeout, log):
    """Wait for what controllers add on their own: Ready nodes, the default ServiceAccount and root CA."""

    def nodes_ready():
        nodes = kube.get_json("nodes")["items"]
        ready = [n for n in nodes
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))]
        return len(ready) == NODE_COUNT

    wait_until(f"{NODE_COUNT} kwok nodes to be Ready", nodes_ready, timeout, log=log)
    wait_until("the default ServiceAccount and kube-root-ca.crt in namespace default",
               lambda: kube.kubectl("get", "-n", "default", "serviceaccount/default", "configmap/kube-root-ca.crt",
                                    check=False).returncode == 0, timeout, log=log)


# kwok v0.8.0 makes the pod IP pool of a CIDR on first use without a lock (PodController.ipPool loads, misses,
# then stores): pods that start together on a fresh kwok can each get a pool of their own and the same IP, and
# the gateway then dials one model server for both. One pod given an IP before any scenario makes the pool once.
IP_POOL_WARMUP_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "kwok-ip-pool-warmup", "namespace": "default"},
    "spec": {"nodeName": "kwok-gpu-node-0", "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]},
}


def warm_pod_ip_pool(kube, timeout, log):
    """Have kwok hand out one pod IP, then remove the pod (its IP goes back to the one pool)."""
    kube.apply([IP_POOL_WARMUP_POD])
    name = IP_POOL_WARMUP_POD["metadata"]["name"]
    wait_until("kwok to give a first pod its IP",
               lambda: kube.get_json("pod", name, "-n", "default").get("status", {}).get("podIP"), timeout, log=log)
    kube.kubectl("delete", "pod", name, "-n", "default", "--wait=true", "--timeout=%ds" % timeout)


def _resource_types(kube, namespaced):
    names = kube.kubectl("api-resources", "--verbs=list,delete", f"--namespaced={str(namespaced).lower()}",
                         "-o", "name").stdout.split()
    return [n for n in names if n not in UNTRACKED_RESOURCES]


def _key(item):
    group = item["apiVersion"].rpartition("/")[0]
    return "/".join([group, item["kind"], item["metadata"].get("namespace", ""), item["metadata"]["name"]])


def _list_scope(kube, namespaced):
    namespace = ["-n", INVENTORY_NAMESPACE] if namespaced else []
    for _attempt in range(LIST_ATTEMPTS):
        # A CRD that is going away makes `kubectl get` fail for its resource only: ask again, with the
        # resource types read again, since discovery may still have listed the type that just went.
        types = _resource_types(kube, namespaced)
        result = kube.kubectl("get", ",".join(types), "-o", "json", *namespace, check=False)
        if result.returncode == 0:
            return json.loads(result.stdout)["items"]
        time.sleep(1)
    raise SandboxError(f"could not list the sandbox's objects: {result.stderr.strip()}")


def inventory(kube):
    """key -> minimal manifest of every tracked object: cluster-scoped ones and those in namespace default."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        items = [item for listed in pool.map(lambda namespaced: _list_scope(kube, namespaced), (False, True))
                 for item in listed]
    return {_key(item): identity(item) for item in items}


def _generations(kube, objects):
    """key -> metadata.generation of those of `objects` that exist."""
    listed = kube.kubectl("get", "-f", "-", "-o", "json", "--ignore-not-found",
                          input_text=dump_documents([identity(o) for o in objects])).stdout
    items = json.loads(listed).get("items", []) if listed.strip() else []
    return {_key(item): item["metadata"].get("generation") for item in items}


def snapshot(kube, flavour):
    """What `restore` returns to: every tracked object, and the platform objects' generations."""
    return {"objects": sorted(inventory(kube)), "platform": _generations(kube, platform_objects(flavour))}


def _extra_namespaces(kube):
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns["metadata"]["name"]}}
            for ns in kube.get_json("namespaces")["items"]
            if ns["metadata"]["name"] != "default" and not ns["metadata"]["name"].startswith("kube-")]


def _additions(kube, baseline_keys):
    baseline_keys = set(baseline_keys)
    extra = [manifest for key, manifest in inventory(kube).items() if key not in baseline_keys]
    return _extra_namespaces(kube) + extra


def restore(kube, baseline, flavour, log):
    """Uninstall every helm release, delete every object added since the snapshot and wait
    until it is gone, then re-apply the platform objects that a test changed or deleted."""
    for release in _helm_releases(kube):
        kube.helm("uninstall", release["name"], "-n", release["namespace"])
    deadline = time.monotonic() + RESTORE_TIMEOUT
    last_delete = 0.0
    while True:
        remaining = _additions(kube, baseline["objects"])
        if not remaining:
            break
        if time.monotonic() > deadline:
            names = ", ".join(f"{m['kind']}/{m['metadata']['name']}" for m in remaining[:10])
            raise SandboxError(f"timed out after {RESTORE_TIMEOUT}s waiting for {names} to be deleted; see {log}")
        if time.monotonic() - last_delete >= REDELETE_INTERVAL:
            kube.delete(remaining)
            last_delete = time.monotonic()
        time.sleep(0.5)
    platform = platform_objects(flavour)
    current = _generations(kube, platform)
    install(kube, [o for o in platform if current.get(_key(o), "missing") != baseline["platform"].get(_key(o))])


def _helm_releases(kube):
    return json.loads(kube.helm("list", "--all-namespaces", "--all", "-o", "json").stdout or "[]")
