import random

import pytest
from sandbox_fakes import (
    EPP_IP, alpha_pool, alpha_stack, epp, model_pod, pool_ref, reference_grant, snapshot, v0_epp_args,
)

from igw_sandbox.gateway import api, backends
from igw_sandbox.gateway.snapshot import POOL_KEYS

POOL = "vllm-llama3-8b-instruct-preview"
GA = "vllm-llama3-8b-instruct-ga"
EPP_TARGET = backends.EppTarget(f"{EPP_IP}:9002", f"uid-default-{POOL}-epp-0")


def _resolve(snap, ref, namespace="default"):
    return backends.resolve(snap, namespace, ref)


def _backend(snap, ref):
    """The resolved backend of a ref that is expected to resolve."""
    problem, backend = _resolve(snap, ref)
    assert problem is None
    return backend


def test_healthy_alpha_pool_resolves_to_its_pods_and_the_epp_behind_its_service():
    backend = _backend(snapshot(*alpha_stack()), pool_ref(POOL))
    assert backend.pool_id == f"{api.ALPHA_GROUP}/default/{POOL}"
    assert backend.epp_targets == (EPP_TARGET,) and backend.epp_problem is None
    assert len(backend.endpoints) == 3
    endpoint = backend.endpoints[0]
    assert endpoint.pod_id.startswith("default/vllm-") and endpoint.address[1] == 8000
    assert backend.endpoint_at(endpoint.address) == endpoint
    assert backend.endpoint_at(("10.9.9.9", 8000)) is None


@pytest.mark.parametrize("objects, missing, ref, reason", [
    (alpha_stack()[:2], (), pool_ref(POOL), "BackendNotFound"),
    (alpha_stack(), (POOL_KEYS[api.GA_GROUP],), pool_ref(GA, api.GA_GROUP), "InvalidKind"),
    (alpha_stack(), (), {"group": "example.com", "kind": "Thing", "name": "x"}, "InvalidKind"),
    (alpha_stack(), (), {**pool_ref(POOL), "namespace": "other"}, "RefNotPermitted"),
    (alpha_stack(), (), {"name": "no-such-service", "port": 80}, "BackendNotFound"),
])
def test_unresolvable_refs_report_the_gateway_api_reason_and_answer_500(objects, missing, ref, reason):
    problem, failure = _resolve(snapshot(*objects, missing=missing), ref)
    assert problem.reason == reason
    assert (failure.status, failure.reason) == (500, reason)


@pytest.mark.parametrize("grant, resolves", [
    (reference_grant("llm", "default", "team-a", api.ALPHA_GROUP, api.POOL_KIND), True),
    (reference_grant("llm", "default", "team-a", api.ALPHA_GROUP, api.POOL_KIND, POOL), True),
    (reference_grant("llm", "default", "team-a", api.ALPHA_GROUP, api.POOL_KIND, "another-pool"), False),
    (reference_grant("llm", "default", "team-b", api.ALPHA_GROUP, api.POOL_KIND), False),
    (reference_grant("llm", "default", "team-a", api.GA_GROUP, api.POOL_KIND), False),
    (reference_grant("llm", "team-a", "team-a", api.ALPHA_GROUP, api.POOL_KIND), False),  # in the route's namespace
])
def test_a_cross_namespace_backend_resolves_only_with_a_reference_grant_in_its_namespace(grant, resolves):
    problem, backend = _resolve(snapshot(*alpha_stack(), grant), {**pool_ref(POOL), "namespace": "default"},
                                namespace="team-a")
    if resolves:
        assert problem is None and backend.pool_id == f"{api.ALPHA_GROUP}/default/{POOL}"
    else:
        assert problem.reason == "RefNotPermitted"
        assert "no ReferenceGrant in namespace default lets HTTPRoutes of namespace team-a" in problem.message


def test_missing_epp_service_is_an_unresolved_backend_with_gke_wording():
    objects = [o for o in alpha_stack() if not (o["kind"] == "Service")]
    problem, failure = _resolve(snapshot(*objects), pool_ref(POOL))
    assert problem.reason == "BackendNotFound" and "GWCER104" in problem.message
    assert failure.status == 500


def test_epp_without_a_ready_pod_leaves_the_pool_without_epp_targets_and_says_why():
    backend = _backend(snapshot(*alpha_stack(available=0)), pool_ref(POOL))
    assert backend.epp_targets == ()
    assert "selects no ready pod" in backend.epp_problem
    assert not backend.fails_open


def test_epp_service_without_the_pools_port_is_named():
    objects = [o for o in alpha_stack() if o["kind"] != "InferencePool"]
    pool = alpha_pool(POOL)
    pool["spec"]["extensionRef"]["portNumber"] = 9999
    backend = _backend(snapshot(*objects, pool), pool_ref(POOL))
    assert backend.epp_targets == () and "has no port 9999" in backend.epp_problem


def test_a_named_target_port_is_found_among_the_epp_containers_ports():
    objects = [o for o in alpha_stack() if o["kind"] not in ("Service", "Deployment")
               and "epp" not in o["metadata"]["name"]]
    objects += epp(f"{POOL}-epp", v0_epp_args(POOL), target_port="grpc")
    assert _backend(snapshot(*objects), pool_ref(POOL)).epp_targets == (EPP_TARGET,)


def test_failopen_pool_knows_a_ready_pod_to_fall_back_to():
    backend = _backend(snapshot(*alpha_stack(available=0, failure_mode=api.FAIL_OPEN)), pool_ref(POOL))
    assert backend.fails_open
    assert backend.any_endpoint(random.Random(1)) in backend.endpoints


def test_no_ready_pod_answers_503_and_says_why():
    objects = [*alpha_stack(pods=0), model_pod("vllm-not-ready", ready=False)]
    backend = _backend(snapshot(*objects), pool_ref(POOL))
    failure = backend.any_endpoint(random.Random(1))
    assert (failure.status, failure.reason) == (503, "NoReadyEndpoints")


def test_pods_serving_another_port_than_the_pool_targets_are_not_endpoints():
    objects = [o for o in alpha_stack() if o["kind"] != "InferencePool"] + [alpha_pool(POOL, port=8001)]
    backend = _backend(snapshot(*objects), pool_ref(POOL))
    failure = backend.any_endpoint(random.Random(1))
    assert failure.status == 503 and "serves port 8000" in failure.message
