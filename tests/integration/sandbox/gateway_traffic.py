"""Requests to the sandbox gateway and the status it reports, for the gateway's integration tests.

Every request goes to the sandbox's own loopback address; every wait is bounded.
"""

import http.client
import json
from dataclasses import dataclass

from igw_sandbox import scenarios, upstream, versions
from igw_sandbox.gateway import api
from igw_sandbox.kube import load_documents
from igw_sandbox.modelserver import POD_HEADER, POOL_HEADER
from igw_sandbox.waits import wait_until

ALPHA_POOL = "vllm-llama3-8b-instruct-preview"
GA_POOL = "vllm-llama3-8b-instruct-ga"
ROUTE = "llm-route"
MODEL_SERVER_DEPLOYMENT = "vllm-llama3-8b-instruct"
ALPHA_POOL_ID = api.pool_id(api.ALPHA_GROUP, "default", ALPHA_POOL)
GA_POOL_ID = api.pool_id(api.GA_GROUP, "default", GA_POOL)
ALPHA_POOLS = f"inferencepools.{api.ALPHA_GROUP}"
GA_POOLS = f"inferencepools.{api.GA_GROUP}"
# Enough for the programming delay, a poll, and kube-controller-manager/kwok rolling pods.
SETTLE_SECONDS = 45


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    @property
    def pool(self):
        return self.headers.get(POOL_HEADER)

    @property
    def pod(self):
        return self.headers.get(POD_HEADER)

    @property
    def failure(self):
        return self.headers.get(api.FAILURE_HEADER)


def send(sandbox, model="food-review", headers=None, path="/v1/completions", method="POST", address=None):
    """One request to the Gateway at `address` (the sandbox's own, where its oldest Gateway listens, by default)."""
    connection = http.client.HTTPConnection(address or sandbox.address, 80, timeout=10)
    try:
        body = json.dumps({"model": model, "prompt": "hi", "max_tokens": 10, "temperature": 0}) if model else None
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def gateway_stats(sandbox):
    return json.loads(send(sandbox, model=None, path=api.STATS_PATH, method="GET").body)["stats"]


def gateway_epps(sandbox):
    """{pod id: state, release, exit code, restarts, log} of the real EPPs the gateway runs."""
    return json.loads(send(sandbox, model=None, path=api.STATS_PATH, method="GET").body)["epps"]


def programming_delay(sandbox):
    """The longest a change takes to be programmed: the delay, or the upper bound of LOW:HIGH."""
    return float(sandbox.env["SANDBOX_PROGRAMMING_DELAY"].split(":")[-1])


def wait_for(what, check, timeout=SETTLE_SECONDS):
    return wait_until(what, check, timeout, interval=0.2)


def route_status(kube, name=ROUTE, namespace="default"):
    """(generation, {condition type: condition}) of the route under the GKE controller."""
    route = kube.get_json("httproute", name, "-n", namespace)
    for parent in route.get("status", {}).get("parents", []):
        if parent["controllerName"] == api.CONTROLLER_NAME:
            return route["metadata"]["generation"], {c["type"]: c for c in parent["conditions"]}
    return route["metadata"]["generation"], {}


def route_resolved_at_current_generation(kube, name=ROUTE):
    generation, conditions = route_status(kube, name)
    resolved = conditions.get("ResolvedRefs", {})
    return resolved.get("status") == "True" and resolved.get("observedGeneration") == generation


def wait_reply(sandbox, what, predicate, **request):
    """Send requests until `predicate(reply)` holds; returns that reply. On timeout the
    error names the last reply."""
    def check():
        reply = send(sandbox, **request)
        if not predicate(reply):
            raise AssertionError(f"last reply: {reply.status} {reply.failure or ''} {reply.body[:300]!r}")
        return reply
    return wait_for(what, check)


def wait_serving(sandbox, model="food-review"):
    """Until the route is programmed at its current generation and a request succeeds."""
    kube = sandbox.kube()
    wait_for(f"HTTPRoute {ROUTE} ResolvedRefs=True at its generation",
             lambda: route_resolved_at_current_generation(kube))
    return wait_reply(sandbox, f"a 200 for model {model}", lambda reply: reply.status == 200, model=model)


def set_route_backends(kube, backend_refs):
    """Replace the backendRefs of the route's only rule; returns the new generation."""
    patch = [{"op": "replace", "path": "/spec/rules/0/backendRefs", "value": backend_refs}]
    kube.kubectl("patch", "httproute", ROUTE, "--type=json", "-p", json.dumps(patch))
    return kube.get_json("httproute", ROUTE)["metadata"]["generation"]


def pool_ref(name, group, weight=None):
    ref = {"group": group, "kind": api.POOL_KIND, "name": name}
    return ref if weight is None else {**ref, "weight": weight}


def install_ga_pool(sandbox, objectives=True):
    """The v1 pool of the zero-downtime guide: the real GIE v1.0.0 chart as release <name>-ga,
    selecting the same model-server pods. Installs the v1 InferencePool CRD if the flavour lacks it,
    and the InferenceObjective CRD that its EPP needs unless `objectives` is false; with it, returns once
    the EPP listens for ext_proc, as a kubelet would hold the pod un-Ready until then."""
    kube = sandbox.kube()
    if kube.kubectl("get", "crd", GA_POOLS, check=False).returncode != 0:
        kube.apply(load_documents(upstream.inference_pool_v1_crd()), server_side=True)
    if objectives:
        kube.apply(load_documents(upstream.inference_objective_crd()), server_side=True)
    chart = upstream.module_dir(upstream.INFERENCE_EXTENSION, versions.GIE_GA) / "config/charts/inferencepool"
    kube.helm("install", GA_POOL, str(chart), "--namespace", "default",
              "--set", f"inferencePool.modelServers.matchLabels.app={MODEL_SERVER_DEPLOYMENT}",
              "--set", "provider.name=gke")
    wait_for(f"deployment {GA_POOL}-epp available",
             lambda: kube.get_json("deployment", f"{GA_POOL}-epp").get("status", {}).get("availableReplicas"))
    if objectives:
        wait_for(f"the EPP of {GA_POOL}-epp to listen for ext_proc",
                 lambda: scenarios.epps_listening(kube, "default", f"{GA_POOL}-epp", state_dir=sandbox.layout.root))


def epp_args(kube, deployment):
    return kube.get_json("deployment", deployment)["spec"]["template"]["spec"]["containers"][0]["args"]


def set_epp_args(kube, deployment, args):
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": args}]
    kube.kubectl("patch", "deployment", deployment, "--type=json", "-p", json.dumps(patch))
    kube.kubectl("rollout", "status", f"deployment/{deployment}", "--timeout=60s")


def stats_delta(before, after):
    """What the gateway served between two stats readings."""
    by_pool = {}
    for pool, codes in after["by_pool"].items():
        delta = {code: n - before["by_pool"].get(pool, {}).get(code, 0) for code, n in codes.items()}
        delta = {code: n for code, n in delta.items() if n}
        if delta:
            by_pool[pool] = delta
    by_status = {code: n - before["by_status"].get(code, 0) for code, n in after["by_status"].items()}
    return {"requests": after["requests"] - before["requests"], "by_pool": by_pool,
            "by_status": {code: n for code, n in by_status.items() if n}}


def epp_log(sandbox, deployment):
    """Everything the real EPPs of `deployment` have logged so far (every pod, every start)."""
    return "".join(path.read_text(errors="replace")
                   for path in sorted(sandbox.layout.logs.glob(f"epp-default-{deployment}-*.log")))
