"""The simulated GKE gateway is as strict as issue 4 promises, proved with real requests
through the sandbox's loopback address after real changes through kubectl and helm."""

import json
import subprocess
import time

import pytest
from gateway_traffic import (
    ALPHA_POOL, ALPHA_POOL_ID, ALPHA_POOLS, GA_POOL, GA_POOL_ID, GA_POOLS, MODEL_SERVER_DEPLOYMENT, ROUTE,
    epp_args, epp_log, gateway_epps, install_ga_pool, pool_ref, programming_delay, route_resolved_at_current_generation, route_status,
    send, set_epp_args, set_route_backends, wait_for, wait_reply, wait_serving,
)

from igw_sandbox.gateway import api
from igw_sandbox.loadgen import LoadGenerator

pytestmark = pytest.mark.sandbox

EPP = f"{ALPHA_POOL}-epp"
COMPLETION = {"model": "food-review", "prompt": "hi", "max_tokens": 10, "temperature": 0}


def _failing(sandbox, reason, text=""):
    """Waits until requests fail with `reason` (and `text` in the body); returns that reply."""
    return wait_reply(sandbox, f"requests to fail with {reason} {text!r}",
                      lambda reply: reply.failure == reason and text in reply.body.decode())


def test_seeded_gateway_is_programmed_and_a_model_server_pod_answers_curl(alpha_basic):
    kube = alpha_basic.kube()
    wait_serving(alpha_basic)
    lines = kube.kubectl("get", "gateway", "-o", "wide").stdout.splitlines()
    gateway = dict(zip(lines[0].split(), lines[1].split()))
    assert (gateway["NAME"], gateway["ADDRESS"], gateway["PROGRAMMED"]) == (
        "inference-gateway", alpha_basic.address, "True")

    result = subprocess.run(
        ["curl", "-sS", "-D", "-", "-X", "POST", f"{alpha_basic.gateway_url}/v1/completions",
         "-H", "Content-Type: application/json", "-d", json.dumps(COMPLETION)],
        capture_output=True, text=True, timeout=30, check=True)
    head, body = result.stdout.split("\n\n", 1)  # text mode turned CRLF into LF
    assert head.startswith("HTTP/1.1 200")
    served_by = json.loads(body)["sandbox"]
    assert served_by["pool"] == ALPHA_POOL_ID
    pod = kube.get_json("pod", served_by["pod"].split("/")[1])
    replica_set = kube.get_json("replicaset", pod["metadata"]["ownerReferences"][0]["name"])
    assert replica_set["metadata"]["ownerReferences"][0]["name"] == MODEL_SERVER_DEPLOYMENT

    generation, conditions = route_status(kube)
    assert {t: (c["status"], c["observedGeneration"]) for t, c in conditions.items()} == {
        "Accepted": ("True", generation), "ResolvedRefs": ("True", generation), "Reconciled": ("True", generation)}
    (parent,) = kube.get_json(ALPHA_POOLS, ALPHA_POOL)["status"]["parent"]
    assert parent["parentRef"]["name"] == "inference-gateway"
    assert {c["type"]: c["status"] for c in parent["conditions"]} == {"Accepted": "True", "ResolvedRefs": "True"}


def test_unknown_model_gets_the_real_v0_epps_own_404(alpha_basic):
    wait_serving(alpha_basic)
    reply = send(alpha_basic, model="no-such-model")
    assert (reply.status, reply.failure) == (404, "EndpointPickerResponse")
    assert "no-such-model" in epp_log(alpha_basic, EPP), "the v0.3.0 EPP logs the model it has no InferenceModel for"


def test_deleting_the_alpha_pool_fails_requests_and_resolved_refs(alpha_basic):
    kube = alpha_basic.kube()
    wait_serving(alpha_basic)
    kube.kubectl("delete", ALPHA_POOLS, ALPHA_POOL)
    wait_for("ResolvedRefs=False", lambda: route_status(kube)[1]["ResolvedRefs"]["status"] == "False")
    conditions = route_status(kube)[1]
    assert conditions["ResolvedRefs"]["reason"] == "BackendNotFound"
    assert conditions["Reconciled"]["status"] == "False"
    reply = send(alpha_basic)
    assert (reply.status, reply.failure) == (500, "BackendNotFound")
    assert ALPHA_POOL.encode() in reply.body


def test_route_to_a_pool_kind_whose_crd_is_missing_is_invalid_kind(alpha_basic):
    kube = alpha_basic.kube()
    assert kube.kubectl("get", "crd", GA_POOLS, check=False).returncode != 0, "the old flavour has no v1 CRD"
    wait_serving(alpha_basic)
    generation = set_route_backends(kube, [pool_ref(GA_POOL, api.GA_GROUP)])

    def invalid_kind_at_generation():
        resolved = route_status(kube)[1]["ResolvedRefs"]
        return resolved["observedGeneration"] == generation and resolved["reason"] == "InvalidKind"

    wait_for("ResolvedRefs=False/InvalidKind", invalid_kind_at_generation)
    reply = send(alpha_basic)
    assert (reply.status, reply.failure) == (500, "InvalidKind")


def test_scaling_the_epp_to_zero_fails_a_failclose_pool(alpha_basic):
    kube = alpha_basic.kube()
    wait_serving(alpha_basic)
    assert kube.get_json(ALPHA_POOLS, ALPHA_POOL)["spec"]["extensionRef"].get("failureMode", "FailClose") == \
        "FailClose"
    kube.kubectl("scale", "deployment", EPP, "--replicas=0")
    reply = _failing(alpha_basic, "EndpointPickerUnavailable", "selects no ready pod")
    assert reply.status == 503 and reply.pool == ALPHA_POOL_ID
    # GKE cannot see that the EPP is down: the route's status stays healthy.
    assert route_resolved_at_current_generation(kube)


def test_route_change_has_no_effect_before_the_programming_delay(alpha_basic):
    kube = alpha_basic.kube()
    wait_serving(alpha_basic)
    delay = programming_delay(alpha_basic)
    before, conditions = route_status(kube)
    assert conditions["Accepted"]["observedGeneration"] == before

    started = time.monotonic()
    patch = [{"op": "add", "path": "/spec/rules/0/matches/0/headers",
              "value": [{"type": "Exact", "name": "x-canary", "value": "1"}]}]
    kube.kubectl("patch", "httproute", ROUTE, "--type=json", "-p", json.dumps(patch))
    while time.monotonic() < started + delay / 2:
        assert send(alpha_basic).status == 200, "the change took effect before the programming delay"
    generation, conditions = route_status(kube)
    assert time.monotonic() < started + delay, "too slow to look at the status within the delay"
    assert generation == before + 1
    assert {c["observedGeneration"] for c in conditions.values()} == {before}

    wait_for("observedGeneration to move", lambda: route_status(kube)[1]["Accepted"]["observedGeneration"]
             == generation)
    assert time.monotonic() - started >= delay
    reply = send(alpha_basic)
    assert (reply.status, reply.failure) == (404, "NoMatchingRoute")
    assert send(alpha_basic, headers={"x-canary": "1"}).status == 200


def test_epp_naming_another_pool_or_started_with_the_other_releases_flags_fails_the_pool(alpha_basic):
    kube = alpha_basic.kube()
    wait_serving(alpha_basic)
    original = epp_args(kube, EPP)
    assert original[:2] == ["-poolName", ALPHA_POOL]

    set_epp_args(kube, EPP, ["-poolName", "another-pool", *original[2:]])
    _failing(alpha_basic, "EndpointPickerUnavailable", "failureMode FailClose")

    # The v0.3.0 binary does not know the v1.0 flags: it exits, and the sandbox says so.
    set_epp_args(kube, EPP, ["--pool-name", ALPHA_POOL, "--pool-namespace", "default"])
    _failing(alpha_basic, "EndpointPickerUnavailable", "failureMode FailClose")
    exited = wait_for("the EPP to be reported exited", lambda: [
        e for pod, e in gateway_epps(alpha_basic).items() if pod.startswith(f"default/{EPP}-")
        and e["state"] == "exited" and e["exit_code"] == 2])
    assert "flag provided but not defined: -pool-name" in epp_log(alpha_basic, EPP)
    assert exited[0]["release"] == "v0.3.0"

    set_epp_args(kube, EPP, original)
    wait_reply(alpha_basic, "the pool to serve again", lambda reply: reply.status == 200)


def test_fifty_fifty_weights_split_a_thousand_requests_across_two_pools(alpha_basic, tmp_path):
    kube = alpha_basic.kube()
    wait_serving(alpha_basic)
    install_ga_pool(alpha_basic)
    set_route_backends(kube, [pool_ref(ALPHA_POOL, api.ALPHA_GROUP, 50), pool_ref(GA_POOL, api.GA_GROUP, 50)])
    wait_for("the split to be programmed", lambda: route_resolved_at_current_generation(kube))
    (parent,) = kube.get_json(GA_POOLS, GA_POOL)["status"]["parents"]
    assert parent["parentRef"] == {"group": api.GATEWAY_GROUP, "kind": "Gateway", "name": "inference-gateway",
                                   "namespace": "default"}

    summary = LoadGenerator(f"{alpha_basic.gateway_url}/v1/completions", rate=100, duration=60, max_requests=1000,
                            model="food-review", summary_path=tmp_path / "split.json").start().wait(90)
    assert (summary["sent"], summary["ok"]) == (1000, 1000)
    assert set(summary["per_pool"]) == {ALPHA_POOL_ID, GA_POOL_ID}
    for pool in (ALPHA_POOL_ID, GA_POOL_ID):
        assert 400 <= summary["per_pool"][pool] <= 600, summary["per_pool"]


def test_a_v1_epp_without_the_inference_objective_crd_does_not_serve_and_its_failclose_pool_answers_503(
        alpha_basic):
    kube = alpha_basic.kube()
    wait_serving(alpha_basic)
    install_ga_pool(alpha_basic, objectives=False)
    set_route_backends(kube, [pool_ref(GA_POOL, api.GA_GROUP)])
    reply = _failing(alpha_basic, "EndpointPickerUnavailable", "failureMode FailClose")
    assert reply.status == 503 and reply.pool == GA_POOL_ID
    # The v1.0 EPP logs JSON, so the quotes around the kind are escaped.
    assert 'no matches for kind \\"InferenceObjective\\"' in epp_log(alpha_basic, f"{GA_POOL}-epp")


def _internal_gateway_and_route(namespace):
    """An internal Gateway of its own and a route in `namespace` to alpha-basic's preview pool in default."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": api.GATEWAY_API_VERSION, "kind": "Gateway",
         "metadata": {"name": "internal-gateway", "namespace": namespace},
         "spec": {"gatewayClassName": "gke-l7-rilb",
                  "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}},
        {"apiVersion": api.GATEWAY_API_VERSION, "kind": "HTTPRoute",
         "metadata": {"name": "internal-route", "namespace": namespace},
         "spec": {"parentRefs": [{"name": "internal-gateway"}],
                  "rules": [{"backendRefs": [{**pool_ref(ALPHA_POOL, api.ALPHA_GROUP), "namespace": "default"}]}]}},
    ]


def test_a_second_gateway_gets_its_own_address_and_a_reference_grant_opens_a_pool_in_another_namespace(alpha_basic):
    kube = alpha_basic.kube()
    wait_serving(alpha_basic)
    team = "team-internal"
    kube.apply(_internal_gateway_and_route(team))

    def internal_address():
        gateway = kube.get_json("gateway", "internal-gateway", "-n", team)
        conditions = {c["type"]: c["status"] for c in gateway.get("status", {}).get("conditions", [])}
        addresses = gateway.get("status", {}).get("addresses") or []
        return conditions.get("Programmed") == "True" and addresses and addresses[0]["value"]

    address = wait_for("the internal Gateway to be programmed with an address", internal_address)
    assert address != alpha_basic.address
    assert address.rsplit(".", 1)[0] == alpha_basic.address.rsplit(".", 1)[0]  # the sandbox's own /24
    first = kube.get_json("gateway", "inference-gateway")["status"]
    assert first["addresses"][0]["value"] == alpha_basic.address
    assert {c["type"]: c["status"] for c in first["conditions"]}["Programmed"] == "True"

    # Cross-namespace: refused until the pool's namespace grants it.
    wait_for("internal-route ResolvedRefs=False/RefNotPermitted",
             lambda: route_status(kube, "internal-route", team)[1].get("ResolvedRefs", {}).get("reason")
             == "RefNotPermitted")
    refused = wait_reply(alpha_basic, "a 500 RefNotPermitted from the internal Gateway",
                         lambda reply: reply.failure == "RefNotPermitted", address=address)
    assert refused.status == 500
    kube.apply([{"apiVersion": f"{api.GATEWAY_GROUP}/v1beta1", "kind": "ReferenceGrant",
                 "metadata": {"name": "internal-routes", "namespace": "default"},
                 "spec": {"from": [{"group": api.GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": team}],
                          "to": [{"group": api.ALPHA_GROUP, "kind": "InferencePool"}]}}])
    served = wait_reply(alpha_basic, "a 200 from the preview pool through the internal Gateway",
                        lambda reply: reply.status == 200, address=address)
    assert served.pool == ALPHA_POOL_ID
    assert route_status(kube, "internal-route", team)[1]["ResolvedRefs"]["status"] == "True"
    # The first Gateway still serves its own route on its own address.
    assert send(alpha_basic).pool == ALPHA_POOL_ID
