"""traffic_split on the sandbox: real API server, real upstream CRDs and charts, real requests.

The starting point is alpha-basic plus a v1 InferencePool beside the alpha one,
from the real GIE v1.0.0 CRDs and chart in the Go module cache, and a second,
header-matched rule in llm-route (to a Service) that traffic_split must leave
alone. The shift goes 100/0 -> 50/50 -> 0/100 between the two pools while another
writer edits that second rule in a tight loop; the share of the requests each pool
answers must match the weights, and none of the other writer's edits may be lost.
"""

import copy
import http.client
import json
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import kubernetes
import pytest
from igw_sandbox import scenarios, upstream, versions
from igw_sandbox.kube import load_documents
from igw_sandbox.loadgen import require_loopback
from igw_sandbox.gateway.api import FAILURE_HEADER
from igw_sandbox.modelserver import POOL_HEADER
from igw_sandbox.waits import wait_until
from kubernetes.client.exceptions import ApiException
from runner import run_task

pytestmark = pytest.mark.sandbox

MODULE = "inference_gateway.migration.traffic_split"
GA_RELEASE = "vllm-llama3-8b-instruct-ga"
MODEL_SERVER_APP = "vllm-llama3-8b-instruct"
GA_CRD_FILES = ("inference.networking.k8s.io_inferencepools.yaml",
                "inference.networking.x-k8s.io_inferenceobjectives.yaml")
ROUTE = "llm-route"
# How the kubernetes client addresses llm-route: group, version, namespace, plural, name.
ROUTE_PATH = ("gateway.networking.k8s.io", "v1", "default", "httproutes", ROUTE)
CANARY_SERVICE = "header-canary"
EDIT_COUNTER_HEADER = "x-edit-count"
READY_TIMEOUT = 180

ALPHA_GROUP = "inference.networking.x-k8s.io"
GA_GROUP = "inference.networking.k8s.io"
ALPHA_POOL = "vllm-llama3-8b-instruct-preview"
GA_POOL = GA_RELEASE
ALPHA_ID = f"{ALPHA_GROUP}/InferencePool/default/{ALPHA_POOL}"
GA_ID = f"{GA_GROUP}/InferencePool/default/{GA_POOL}"
# What the gateway stamps on each answer: which pool served it.
ALPHA_HEADER = f"{ALPHA_GROUP}/default/{ALPHA_POOL}"
GA_HEADER = f"{GA_GROUP}/default/{GA_POOL}"

REQUESTS_PER_STEP = 1000
SENDERS = 16
SIGMAS = 4.5
# Bounds of the concurrent writer; it is stopped when its step's task returns.
MAX_EDITS_PER_STEP = 3000
MAX_EDIT_SECONDS = 300

CANARY_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/"},
                 "headers": [{"type": "Exact", "name": "x-canary", "value": "1"}]}],
    "filters": [{"type": "RequestHeaderModifier",
                 "requestHeaderModifier": {"set": [{"name": EDIT_COUNTER_HEADER, "value": "0"}]}}],
    "backendRefs": [{"group": "", "kind": "Service", "name": CANARY_SERVICE, "port": 8000, "weight": 1}],
}


def route_ready(kube):
    """llm-route when every parent accepted its current generation, else None."""
    route = kube.get_json("httproute", ROUTE)
    generation = route["metadata"]["generation"]
    parents = route.get("status", {}).get("parents") or []
    ready = parents and all(
        any(c["type"] == wanted and c["status"] == "True" and c.get("observedGeneration") == generation
            for c in parent.get("conditions", []))
        for parent in parents for wanted in ("Accepted", "ResolvedRefs"))
    return route if ready else None


def wait_route_settled(kube, timeout=READY_TIMEOUT):
    """Wait until the gateway reported the route's current generation, and return the route."""
    deadline = time.monotonic() + timeout
    while (route := route_ready(kube)) is None:
        if time.monotonic() >= deadline:
            raise AssertionError("llm-route not ready within %ss: %s"
                                 % (timeout, json.dumps(kube.get_json("httproute", ROUTE).get("status"))))
        time.sleep(0.5)
    return route


@pytest.fixture
def pools_side_by_side(alpha_basic):
    kube = alpha_basic.kube()
    gie = upstream.module_dir(upstream.INFERENCE_EXTENSION, versions.GIE_GA)
    kube.apply([doc for name in GA_CRD_FILES for doc in load_documents(gie / "config/crd/bases" / name)],
               server_side=True)
    kube.helm("install", GA_RELEASE, str(gie / "config/charts/inferencepool"), "--namespace", "default",
              "--set", f"inferencePool.modelServers.matchLabels.app={MODEL_SERVER_APP}",
              "--set", "provider.name=gke")
    kube.kubectl("rollout", "status", f"deployment/{GA_RELEASE}-epp", "--timeout=%ds" % READY_TIMEOUT)
    # kwok reports the EPP pod Ready at once; the first step that sends traffic to the v1 pool must find its
    # endpoint picker listening, as a kubelet's readiness probe would have made sure.
    wait_until(f"the EPP of {GA_RELEASE}-epp to listen for ext_proc",
               lambda: scenarios.epps_listening(kube, "default", f"{GA_RELEASE}-epp", alpha_basic.layout.root),
               READY_TIMEOUT, interval=0.5)
    kube.apply([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": CANARY_SERVICE, "namespace": "default"},
                 "spec": {"selector": {"app": MODEL_SERVER_APP}, "ports": [{"name": "http", "port": 8000}]}}])
    kube.kubectl("patch", "httproute", ROUTE, "--type=json",
                 "-p", json.dumps([{"op": "add", "path": "/spec/rules/-", "value": CANARY_RULE}]))
    wait_route_settled(kube)
    return alpha_basic


def split_args(alpha_weight, ga_weight, **options):
    return dict(namespace="default", routes=[ROUTE], wait_timeout=120, wait_sleep=0.5,
                backends=[{"group": ALPHA_GROUP, "name": ALPHA_POOL, "weight": alpha_weight},
                          {"group": GA_GROUP, "name": GA_POOL, "weight": ga_weight}], **options)


class RuleEditor(threading.Thread):
    """Another writer: increments the counter header of llm-route's second rule as fast as it can,
    each time a read-modify-write guarded by resourceVersion, as a controller would."""

    def __init__(self, kubeconfig, max_edits=MAX_EDITS_PER_STEP, max_seconds=MAX_EDIT_SECONDS):
        super().__init__(daemon=True)
        api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        self.routes = kubernetes.client.CustomObjectsApi(api_client)
        self.max_edits, self.deadline = max_edits, time.monotonic() + max_seconds
        self.edits = 0
        self.error = None
        self.stopping = threading.Event()

    def _counter(self, route):
        header, = route["spec"]["rules"][1]["filters"][0]["requestHeaderModifier"]["set"]
        assert header["name"] == EDIT_COUNTER_HEADER
        return header

    def run(self):
        try:
            while (not self.stopping.is_set() and self.edits < self.max_edits
                   and time.monotonic() < self.deadline):
                route = self.routes.get_namespaced_custom_object(*ROUTE_PATH)
                counter = self._counter(route)
                counter["value"] = str(int(counter["value"]) + 1)
                try:
                    self.routes.replace_namespaced_custom_object(*ROUTE_PATH, route)
                    self.edits += 1
                except ApiException as error:
                    if error.status != 409:
                        raise
        except Exception as error:  # noqa: BLE001 - reported by finish() in the test's thread
            self.error = error

    def finish(self):
        self.stopping.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the concurrent writer did not stop"
        if self.error:
            raise self.error
        return self.edits


def pool_counts(gateway_url, requests=REQUESTS_PER_STEP):
    """Send `requests` completions through the gateway; Counter of (status, pool that answered, failure)."""
    require_loopback(gateway_url)
    address = urlsplit(gateway_url)
    body = json.dumps({"model": "food-review", "prompt": "hi", "max_tokens": 10, "temperature": 0})
    local, connections = threading.local(), []

    def send(_request_index):
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
            connections.append(local.connection)
        try:
            local.connection.request("POST", "/v1/completions", body=body,
                                     headers={"Content-Type": "application/json"})
            response = local.connection.getresponse()
            response.read()
            return response.status, response.getheader(POOL_HEADER), response.getheader(FAILURE_HEADER)
        except (OSError, http.client.HTTPException) as error:
            local.connection.close()
            return 0, None, repr(error)

    try:
        with ThreadPoolExecutor(SENDERS) as senders:
            return Counter(senders.map(send, range(requests)))
    finally:
        for connection in connections:
            connection.close()


def assert_share(counts, ga_weight, alpha_weight):
    """Every request answered, by the two pools in proportion to the weights (binomial bounds)."""
    answered = sum(counts.values())
    assert answered == REQUESTS_PER_STEP
    assert set(counts) <= {(200, ALPHA_HEADER, None), (200, GA_HEADER, None)}, counts
    p = ga_weight / (ga_weight + alpha_weight)
    bound = SIGMAS * math.sqrt(answered * p * (1 - p))
    assert abs(counts[(200, GA_HEADER, None)] - answered * p) <= bound, (counts, p, bound)


def run_split(sandbox, args, **kwargs):
    result = run_task(MODULE, args, sandbox.kubeconfig, **kwargs)
    assert not result.get("failed"), result.get("msg")
    return result


def rule_report(result):
    (route,) = result["routes"]
    assert (route["namespace"], route["name"]) == ("default", ROUTE)
    (rule,) = route["rules"]  # the header rule to a Service is out of scope
    assert (rule["index"], rule["name"]) == (0, None)
    return route, rule


def beyond_the_weights(route):
    """What traffic_split must not touch, apart from the rule the other writer edits."""
    metadata, spec = route["metadata"], route["spec"]
    main_rule = {key: value for key, value in spec["rules"][0].items() if key != "backendRefs"}
    return metadata.get("labels"), metadata.get("annotations"), spec["parentRefs"], spec.get("hostnames"), main_rule


def test_shift_between_pools_under_a_concurrent_writer(pools_side_by_side):
    sandbox = pools_side_by_side
    kube = sandbox.kube()
    original = wait_route_settled(kube)
    edits = 0

    steps = [(100, 0, {"add_missing": True}, {ALPHA_ID: 1}),
             (50, 50, {}, {ALPHA_ID: 100, GA_ID: 0}),
             (0, 100, {}, {ALPHA_ID: 50, GA_ID: 50})]
    for alpha_weight, ga_weight, options, weights_before in steps:
        editor = RuleEditor(sandbox.kubeconfig)
        editor.start()
        try:
            result = run_split(sandbox, split_args(alpha_weight, ga_weight, **options))
        finally:
            edits += editor.finish()
        route, rule = rule_report(result)
        assert result["changed"] and route["changed"]
        assert rule["before"] == weights_before
        assert rule["after"] == {ALPHA_ID: alpha_weight, GA_ID: ga_weight}
        assert route["observed_generation"] >= route["generation"]
        assert editor.edits > 0, "the concurrent writer never got an edit in"

        live = kube.get_json("httproute", ROUTE)
        assert [(r.get("group"), r["name"], r["weight"]) for r in live["spec"]["rules"][0]["backendRefs"]] == [
            (ALPHA_GROUP, ALPHA_POOL, alpha_weight), (GA_GROUP, GA_POOL, ga_weight)]
        assert_share(pool_counts(sandbox.gateway_url), ga_weight, alpha_weight)

    final = wait_route_settled(kube)
    canary = final["spec"]["rules"][1]
    counter = canary["filters"][0]["requestHeaderModifier"]["set"][0]
    assert counter == {"name": EDIT_COUNTER_HEADER, "value": str(edits)}, "an edit of the other writer was lost"
    expected_canary = copy.deepcopy(CANARY_RULE)
    expected_canary["filters"][0]["requestHeaderModifier"]["set"][0]["value"] = str(edits)
    assert json.dumps(canary, sort_keys=True) == json.dumps(expected_canary, sort_keys=True)

    assert json.dumps(beyond_the_weights(final)) == json.dumps(beyond_the_weights(original))
    assert original["spec"]["rules"][0]["backendRefs"][0] == final["spec"]["rules"][0]["backendRefs"][0] | {
        "weight": 1}

    again = run_split(sandbox, split_args(0, 100))
    route, rule = rule_report(again)
    assert again["changed"] is False and route["changed"] is False
    assert rule["before"] == rule["after"] == {ALPHA_ID: 0, GA_ID: 100}
    assert route["observed_generation"] >= route["generation"] == final["metadata"]["generation"]
    assert kube.get_json("httproute", ROUTE)["metadata"]["resourceVersion"] == final["metadata"]["resourceVersion"]


def test_check_mode_and_refusals_write_nothing(pools_side_by_side):
    sandbox = pools_side_by_side
    kube = sandbox.kube()
    before = wait_route_settled(kube)

    result = run_split(sandbox, split_args(50, 50, add_missing=True), check=True, diff=True)
    route, rule = rule_report(result)
    assert result["changed"] and route["changed"]
    assert rule["after"] == {ALPHA_ID: 50, GA_ID: 50}
    assert route["generation"] == before["metadata"]["generation"]
    (diff,) = result["diff"]
    assert diff["before"]["rules"] == before["spec"]["rules"]
    assert diff["after"]["rules"][0]["backendRefs"][1] == {"group": GA_GROUP, "kind": "InferencePool",
                                                           "name": GA_POOL, "weight": 50}
    assert diff["after"]["rules"][1] == before["spec"]["rules"][1]

    after = kube.get_json("httproute", ROUTE)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]

    missing_pool = split_args(50, 50, add_missing=True)
    missing_pool["backends"][1]["name"] = "no-such-pool"
    result = run_task(MODULE, missing_pool, sandbox.kubeconfig)
    assert result.get("failed")
    assert (f"HTTPRoute default/{ROUTE} rule 0: backend {GA_GROUP} InferencePool default/no-such-pool does not "
            f"exist") in result["msg"]

    not_added = run_task(MODULE, split_args(50, 50), sandbox.kubeconfig)
    assert not_added.get("failed")
    assert not_added["problems"] == [
        f"HTTPRoute default/{ROUTE} rule 0 does not reference backend {GA_GROUP} InferencePool default/{GA_POOL}; "
        f"add it to the rule or set add_missing: true"]

    assert kube.get_json("httproute", ROUTE)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


# --- a programming delay drawn per change: the gate waits for the generation, not for a time ----------

VARIABLE_DELAY = "2:5"  # every change takes 2 to 5 s to be programmed, each its own


def parents_at(route, generation):
    """Whether every parent reports Accepted and ResolvedRefs True at exactly ``generation``."""
    parents = route.get("status", {}).get("parents") or []
    return bool(parents) and all(
        any(c["type"] == wanted and c["status"] == "True" and c.get("observedGeneration") == generation
            for c in parent.get("conditions", []))
        for parent in parents for wanted in ("Accepted", "ResolvedRefs"))


def test_the_wait_never_returns_before_the_gateway_programmed_the_generation_it_wrote(sandbox_factory):
    sandbox = sandbox_factory("variable-delay", programming_delay=VARIABLE_DELAY)
    assert sandbox.env["SANDBOX_PROGRAMMING_DELAY"] == VARIABLE_DELAY
    sandbox.reset()
    sandbox.seed("alpha-basic")
    kube = sandbox.kube()
    wait_route_settled(kube)

    # Control: right after a write the gateway has not programmed it yet (the delay is at least 2 s),
    # so a gate that did not wait would be caught by the reads below.
    before = kube.get_json("httproute", ROUTE)["metadata"]["generation"]
    kube.kubectl("patch", "httproute", ROUTE, "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 7}]))
    written = kube.get_json("httproute", ROUTE)
    assert written["metadata"]["generation"] == before + 1
    assert not parents_at(written, before + 1)
    wait_route_settled(kube)

    for step, weight in enumerate((100, 40, 90, 10, 55)):
        result = run_split(sandbox, dict(namespace="default", routes=[ROUTE], wait=True, wait_timeout=60,
                                         wait_sleep=0.2,
                                         backends=[{"group": ALPHA_GROUP, "name": ALPHA_POOL, "weight": weight}]))
        live = kube.get_json("httproute", ROUTE)  # read as soon as the task has returned
        (route,) = result["routes"]
        assert result["changed"], step
        assert route["generation"] == live["metadata"]["generation"] == before + 2 + step
        assert route["observed_generation"] == route["generation"], step
        assert parents_at(live, route["generation"]), (step, live.get("status"))
        assert [r["weight"] for r in live["spec"]["rules"][0]["backendRefs"]] == [weight]
