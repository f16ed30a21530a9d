"""Cluster objects shaped as the API server returns them, for the gateway's unit tests."""

from igw_sandbox.gateway import api
from igw_sandbox.gateway.snapshot import KEYS, POOL_KEYS, Snapshot

CLASS_NAME = "gke-l7-regional-external-managed"
MODEL_LABELS = {"app": "vllm-llama3-8b-instruct"}
VLLM_ARGS = ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000", "--enable-lora",
             "--lora-modules", "food-review=/adapters/food-review"]
OLD = "2026-01-01T00:00:00Z"
NEW = "2026-01-02T00:00:00Z"


def meta(name, namespace="default", generation=1, created=OLD, labels=None):
    return {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}", "generation": generation,
            "creationTimestamp": created, "resourceVersion": "1", **({"labels": labels} if labels else {})}


def gateway_class(name=CLASS_NAME, controller=api.CONTROLLER_NAME):
    return {"apiVersion": api.GATEWAY_API_VERSION, "kind": "GatewayClass",
            "metadata": {k: v for k, v in meta(name).items() if k != "namespace"},
            "spec": {"controllerName": controller}}


def gateway(name="inference-gateway", port=80, class_name=CLASS_NAME, created=OLD, **listener):
    return {"apiVersion": api.GATEWAY_API_VERSION, "kind": "Gateway", "metadata": meta(name, created=created),
            "spec": {"gatewayClassName": class_name,
                     "listeners": [{"name": "http", "port": port, "protocol": "HTTP", **listener}]}}


def reference_grant(name, namespace, from_namespace, to_group, to_kind, to_name=None):
    """A ReferenceGrant in `namespace` letting HTTPRoutes of `from_namespace` refer to objects of that kind."""
    target = {"group": to_group, "kind": to_kind, **({"name": to_name} if to_name else {})}
    return {"apiVersion": f"{api.GATEWAY_GROUP}/{api.REFERENCE_GRANT_VERSION}", "kind": "ReferenceGrant",
            "metadata": meta(name, namespace),
            "spec": {"from": [{"group": api.GATEWAY_GROUP, "kind": api.HTTPROUTE_KIND, "namespace": from_namespace}],
                     "to": [target]}}


def pool_ref(name, group=api.ALPHA_GROUP, weight=None):
    ref = {"group": group, "kind": api.POOL_KIND, "name": name}
    return ref if weight is None else {**ref, "weight": weight}


def route(name, rules, parent="inference-gateway", generation=1, created=OLD, hostnames=None):
    spec = {"parentRefs": [{"group": api.GATEWAY_GROUP, "kind": "Gateway", "name": parent}], "rules": rules}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": api.GATEWAY_API_VERSION, "kind": "HTTPRoute",
            "metadata": meta(name, generation=generation, created=created), "spec": spec}


def alpha_pool(name, epp=None, failure_mode=None, port=8000, selector=None):
    ref = {"name": epp or f"{name}-epp"}
    if failure_mode:
        ref["failureMode"] = failure_mode
    return {"apiVersion": f"{api.ALPHA_GROUP}/v1alpha2", "kind": api.POOL_KIND, "metadata": meta(name),
            "spec": {"selector": selector or MODEL_LABELS, "targetPortNumber": port, "extensionRef": ref}}


def ga_pool(name, epp=None, failure_mode=None, port=8000):
    ref = {"name": epp or f"{name}-epp", "port": {"number": 9002}}
    if failure_mode:
        ref["failureMode"] = failure_mode
    return {"apiVersion": f"{api.GA_GROUP}/v1", "kind": api.POOL_KIND, "metadata": meta(name),
            "spec": {"selector": {"matchLabels": MODEL_LABELS}, "targetPorts": [{"number": port}],
                     "endpointPickerRef": ref}}


def v0_epp_args(pool, namespace="default"):
    return ["-poolName", pool, "-poolNamespace", namespace, "-v", "3", "-grpcPort", "9002"]


def v1_epp_args(pool, group=None):
    return ["--pool-name", pool, "--pool-namespace", "default", *(["--pool-group", group] if group else [])]


EPP_IP = "127.0.3.1"


def epp(name, args, available=1, target_port=None, ip=EPP_IP):
    """The EPP Service, Deployment and (when available) its ready pod, as the inferencepool chart names them."""
    labels = {"inferencepool": name}
    port = {"name": "grpc-ext-proc", "port": 9002, **({"targetPort": target_port} if target_port else {})}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta(name),
               "spec": {"selector": labels, "ports": [port]}}
    container = {"name": "epp", "args": args, "image": "registry.k8s.io/gateway-api-inference-extension/epp:v0.3.0",
                 "ports": [{"name": "grpc", "containerPort": 9002}]}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name),
                  "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
                  "status": {"availableReplicas": available} if available else {}}
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": meta(f"{name}-{i}", labels=labels),
             "spec": {"containers": [container]},
             "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "podIP": ip}}
            for i in range(available)]
    return [service, deployment, *pods]


def model_pod(name, ready=True, args=None, labels=None, ip=None):
    """A vLLM pod; its IP is a loopback address of its own unless given, so that unit tests can serve it."""
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    ip = ip or "127.0.2.%d" % (1 + sum(name.encode()) % 250)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, labels=labels or MODEL_LABELS),
            "spec": {"containers": [{"name": "vllm", "args": args or VLLM_ARGS}]},
            "status": {"phase": "Running", "conditions": conditions, "podIP": ip}}


def inference_model(name, model_name, pool, targets=None, created=OLD):
    spec = {"modelName": model_name, "poolRef": {"name": pool}}
    if targets is not None:
        spec["targetModels"] = targets
    return {"apiVersion": f"{api.ALPHA_GROUP}/v1alpha2", "kind": api.MODEL_KIND,
            "metadata": meta(name, created=created), "spec": spec}


def _key(obj):
    group = obj["apiVersion"].rpartition("/")[0]
    if obj["kind"] == api.POOL_KIND:
        return POOL_KEYS[group]
    return obj["kind"].lower() + ("es" if obj["kind"].endswith("Class") else "s")


def listings(*objects, missing=()):
    """Raw list results per snapshot key; kinds in `missing` answer 404 (CRD absent)."""
    result = {key: [] for key in KEYS}
    for obj in objects:
        result[_key(obj)].append(obj)
    for key in missing:
        result[key] = None
    return result


def snapshot(*objects, missing=()):
    return Snapshot.from_listings(listings(*objects, missing=missing))


def alpha_stack(pool="vllm-llama3-8b-instruct-preview", pods=3, failure_mode=None, epp_args=None, available=1):
    """What the alpha-basic scenario seeds, minus the route: class, gateway, pool, EPP, model pods, models."""
    return [gateway_class(), gateway(), alpha_pool(pool, failure_mode=failure_mode),
            *epp(f"{pool}-epp", epp_args or v0_epp_args(pool), available),
            *[model_pod(f"vllm-{i}") for i in range(pods)],
            inference_model("food-review", "food-review", pool, [{"name": "food-review", "weight": 100}]),
            inference_model("base-model", "meta-llama/Llama-3.1-8B-Instruct", pool)]
