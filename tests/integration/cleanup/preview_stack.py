"""What the cleanup and rollback tests do to the sandbox by hand, as an operator would.

Everything goes through kubectl and helm (the sandbox's Kube), and every
request to the gateway goes to the sandbox's loopback address.
"""

import http.client
import json
import time
from urllib.parse import urlsplit

from igw_sandbox import upstream, versions
from igw_sandbox.kube import load_documents
from igw_sandbox.loadgen import require_loopback
from igw_sandbox.modelserver import POOL_HEADER

ALPHA_GROUP = "inference.networking.x-k8s.io"
GA_GROUP = "inference.networking.k8s.io"
ALPHA_CRDS = ("inferencepools.inference.networking.x-k8s.io", "inferencemodels.inference.networking.x-k8s.io")
OBJECTIVE_CRD = "inferenceobjectives.inference.networking.x-k8s.io"
GA_POOL_CRD = "inferencepools.inference.networking.k8s.io"
ALPHA_RELEASE = "vllm-llama3-8b-instruct-preview"
GA_RELEASE = "vllm-llama3-8b-instruct-ga"
MODEL_SERVER_APP = "vllm-llama3-8b-instruct"
ROUTE = "llm-route"
ALPHA_ANSWER = f"{ALPHA_GROUP}/default/{ALPHA_RELEASE}"
GA_ANSWER = f"{GA_GROUP}/default/{GA_RELEASE}"
SETTLE_TIMEOUT = 120


def crd_names(kube):
    return {crd["metadata"]["name"] for crd in kube.get_json("crd")["items"]}


def names(kube, resource, namespace=None):
    where = ["-n", namespace] if namespace else ["-A"]
    return sorted((o["metadata"].get("namespace"), o["metadata"]["name"])
                  for o in kube.get_json(resource, *where)["items"])


def install_ga_crds(kube, with_pool=True):
    """The v1.0.0 CRDs from the Go module cache: InferenceObjective, and the v1 InferencePool unless GKE has it."""
    bases = upstream.module_dir(upstream.INFERENCE_EXTENSION, versions.GIE_GA) / "config/crd/bases"
    files = [f"{ALPHA_GROUP}_inferenceobjectives.yaml"] + ([f"{GA_GROUP}_inferencepools.yaml"] if with_pool else [])
    kube.apply([doc for name in files for doc in load_documents(bases / name)], server_side=True)


def create_objective(kube, name, namespace="default", pool=GA_RELEASE, priority=1):
    kube.kubectl("create", "namespace", namespace, check=False)
    kube.apply([{"apiVersion": f"{ALPHA_GROUP}/v1alpha2", "kind": "InferenceObjective",
                 "metadata": {"name": name, "namespace": namespace},
                 "spec": {"priority": priority, "poolRef": {"group": GA_GROUP, "name": pool}}}])


def create_stray_model(kube, name="stray", namespace="team-b"):
    kube.kubectl("create", "namespace", namespace, check=False)
    kube.apply([{"apiVersion": f"{ALPHA_GROUP}/v1alpha2", "kind": "InferenceModel",
                 "metadata": {"name": name, "namespace": namespace},
                 "spec": {"modelName": "stray-model", "poolRef": {"name": "gone"}}}])


def install_ga_release(kube):
    chart = upstream.module_dir(upstream.INFERENCE_EXTENSION, versions.GIE_GA) / "config/charts/inferencepool"
    kube.helm("install", GA_RELEASE, str(chart), "--namespace", "default",
              "--set", f"inferencePool.modelServers.matchLabels.app={MODEL_SERVER_APP}", "--set", "provider.name=gke")
    kube.kubectl("rollout", "status", f"deployment/{GA_RELEASE}-epp", f"--timeout={SETTLE_TIMEOUT}s")


def remove_preview_stack(kube):
    """Step 1 of the guide's simple path: helm uninstall the preview release, delete its InferenceModels."""
    kube.helm("uninstall", ALPHA_RELEASE, "--namespace", "default", "--wait", f"--timeout={SETTLE_TIMEOUT}s")
    kube.kubectl("delete", "inferencemodels.inference.networking.x-k8s.io", "--all", "-n", "default")


def set_route_backends(kube, backend_refs):
    """Replace the backendRefs of llm-route's only rule (an empty list removes them)."""
    patch = ([{"op": "replace", "path": "/spec/rules/0/backendRefs", "value": backend_refs}] if backend_refs
             else [{"op": "remove", "path": "/spec/rules/0/backendRefs"}])
    kube.kubectl("patch", "httproute", ROUTE, "-n", "default", "--type=json", "-p", json.dumps(patch))


def ga_pool_ref():
    return {"group": GA_GROUP, "kind": "InferencePool", "name": GA_RELEASE}


def ask_gateway(gateway_url, model="food-review"):
    """One completion request: (status, the pool that answered); (0, error name) when nothing answered."""
    require_loopback(gateway_url)
    address = urlsplit(gateway_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.request("POST", "/v1/completions",
                           body=json.dumps({"model": model, "prompt": "hi", "max_tokens": 10, "temperature": 0}),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader(POOL_HEADER)
    except (OSError, http.client.HTTPException) as error:
        return 0, type(error).__name__
    finally:
        connection.close()


def wait_for_answer(gateway_url, pool_answer, timeout=SETTLE_TIMEOUT):
    """Poll (bounded) until the gateway answers 200 from the given pool; the last answer either way."""
    deadline = time.monotonic() + timeout
    while True:
        answer = ask_gateway(gateway_url)
        if answer == (200, pool_answer) or time.monotonic() >= deadline:
            return answer
        time.sleep(1)
