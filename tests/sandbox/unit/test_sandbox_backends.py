import json
import random

import pytest
from sandbox_fakes import (
    NEW, alpha_pool, alpha_stack, epp, ga_pool, inference_model, model_pod, pool_ref, snapshot, v0_epp_args,
    v1_epp_args,
)

from igw_sandbox.gateway import api, backends
from igw_sandbox.gateway.snapshot import POOL_KEYS

POOL = "vllm-llama3-8b-instruct-preview"
GA = "vllm-llama3-8b-instruct-ga"
BODY = json.dumps({"model": "food-review", "prompt": "hi"}).encode()


@pytest.mark.parametrize("argv, expected", [
    (["-poolName", "p", "-poolNamespace", "ns"], ("v0", "p", "ns", api.ALPHA_GROUP)),
    (["--poolName=p"], ("v0", "p", "default", api.ALPHA_GROUP)),
    (["--pool-name", "p", "--zap-encoder", "json"], ("v1", "p", "default", api.GA_GROUP)),
    (["-pool-name=p", "--pool-group", api.ALPHA_GROUP], ("v1", "p", "default", api.ALPHA_GROUP)),
])
def test_epp_args_name_the_pool_in_either_flag_style(argv, expected):
    config = backends.parse_epp_args(argv)
    assert (config.style, config.pool_name, config.pool_namespace, config.pool_group) == expected


def test_epp_args_without_pool_flags_name_nothing_and_mixed_styles_are_rejected():
    assert backends.parse_epp_args(["-v", "3", "--grpc-port", "9002"]) is None
    with pytest.raises(backends.EppArgsError):
        backends.parse_epp_args(["-poolName", "p", "--pool-group", api.ALPHA_GROUP])


def _resolve(snap, ref, namespace="default"):
    return backends.resolve(snap, namespace, ref)


def _backend(snap, ref):
    """The resolved backend of a ref that is expected to resolve."""
    problem, backend = _resolve(snap, ref)
    assert problem is None
    return backend


def _pick(backend, body=BODY, headers=None, seed=1):
    return backend.pick(body, headers or {}, random.Random(seed))


def test_healthy_alpha_pool_resolves_and_picks_a_ready_pod():
    backend = _backend(snapshot(*alpha_stack()), pool_ref(POOL))
    pick = _pick(backend)
    assert pick.endpoint.pod_id.startswith("default/vllm-")
    assert backend.pool_id == f"{api.ALPHA_GROUP}/default/{POOL}"


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


def test_missing_epp_service_is_an_unresolved_backend_with_gke_wording():
    objects = [o for o in alpha_stack() if not (o["kind"] == "Service")]
    problem, failure = _resolve(snapshot(*objects), pool_ref(POOL))
    assert problem.reason == "BackendNotFound" and "GWCER104" in problem.message
    assert failure.status == 500


def test_epp_without_available_replicas_fails_a_failclose_pool():
    backend = _backend(snapshot(*alpha_stack(available=0)), pool_ref(POOL))
    failure = _pick(backend)
    assert (failure.status, failure.reason) == (503, "EndpointPickerUnavailable")
    assert "no available replicas" in failure.message


def test_failopen_pool_forwards_without_the_epp_and_without_model_rules():
    backend = _backend(snapshot(*alpha_stack(available=0, failure_mode=api.FAIL_OPEN)), pool_ref(POOL))
    body = json.dumps({"model": "not-registered"}).encode()
    pick = _pick(backend, body)
    assert pick.body == body


@pytest.mark.parametrize("epp_args", [
    v0_epp_args("another-pool"),
    v0_epp_args(POOL, namespace="elsewhere"),
    v1_epp_args(POOL),  # a v1.0 EPP defaults to the GA group
    ["-poolName", POOL, "--pool-group", api.ALPHA_GROUP],
])
def test_epp_that_does_not_serve_this_pool_fails_it(epp_args):
    backend = _backend(snapshot(*alpha_stack(epp_args=epp_args)), pool_ref(POOL))
    assert _pick(backend).status == 503


def test_v1_epp_given_the_alpha_group_serves_an_alpha_pool_and_passes_models_through():
    backend = _backend(snapshot(*alpha_stack(epp_args=v1_epp_args(POOL, api.ALPHA_GROUP))), pool_ref(POOL))
    body = json.dumps({"model": "no-inference-model-for-this"}).encode()
    assert _pick(backend, body).body == body


def _ga_stack(epp_args=None):
    return [ga_pool(GA), *epp(f"{GA}-epp", epp_args or v1_epp_args(GA))]


def test_v0_epp_cannot_serve_a_ga_pool():
    backend = _backend(snapshot(*alpha_stack(), *_ga_stack(v0_epp_args(GA))), pool_ref(GA, api.GA_GROUP))
    assert _pick(backend).reason == "EndpointPickerUnavailable"


def test_ga_pool_honours_the_model_rewrite_header():
    backend = _backend(snapshot(*alpha_stack(), *_ga_stack()), pool_ref(GA, api.GA_GROUP))
    pick = _pick(backend, headers={api.MODEL_REWRITE_HEADER: "food-review-v2"})
    assert json.loads(pick.body)["model"] == "food-review-v2"
    assert _pick(backend).body == BODY


def test_alpha_pool_rejects_a_model_without_inference_model_with_404():
    backend = _backend(snapshot(*alpha_stack()), pool_ref(POOL))
    failure = _pick(backend, json.dumps({"model": "unknown-model"}).encode())
    assert (failure.status, failure.reason) == (404, "ModelNotFound")
    assert "unknown-model" in failure.message
    assert _pick(backend, b'{"prompt": "no model"}').status == 400


def test_alpha_pool_rewrites_the_model_by_target_model_weights():
    objects = [o for o in alpha_stack() if o["kind"] != "InferenceModel"] + [
        inference_model("food-review", "food-review", POOL, [{"name": "food-review-v1", "weight": 1},
                                                             {"name": "food-review-v2", "weight": 3}])]
    backend = _backend(snapshot(*objects), pool_ref(POOL))
    rng = random.Random(3)
    models = [json.loads(backend.pick(BODY, {}, rng).body)["model"] for _draw in range(2000)]
    assert set(models) == {"food-review-v1", "food-review-v2"}
    assert 0.70 < models.count("food-review-v2") / 2000 < 0.80


def test_oldest_inference_model_wins_a_model_name():
    objects = [o for o in alpha_stack() if o["kind"] != "InferenceModel"] + [
        inference_model("newer", "food-review", POOL, [{"name": "from-newer"}], created=NEW),
        inference_model("older", "food-review", POOL, [{"name": "from-older"}])]
    backend = _backend(snapshot(*objects), pool_ref(POOL))
    assert json.loads(_pick(backend).body)["model"] == "from-older"


def test_target_models_without_weights_are_drawn_uniformly():
    spec = {"modelName": "m", "targetModels": [{"name": "a"}, {"name": "b"}]}
    rng = random.Random(5)
    drawn = [backends.draw_target_model(spec, rng) for _draw in range(1000)]
    assert 400 < drawn.count("a") < 600


def test_no_ready_pod_answers_503_and_says_why():
    objects = [*alpha_stack(pods=0), model_pod("vllm-not-ready", ready=False)]
    backend = _backend(snapshot(*objects), pool_ref(POOL))
    failure = _pick(backend)
    assert (failure.status, failure.reason) == (503, "NoReadyEndpoints")


def test_pods_serving_another_port_than_the_pool_targets_are_not_endpoints():
    objects = [o for o in alpha_stack() if o["kind"] != "InferencePool"] + [alpha_pool(POOL, port=8001)]
    backend = _backend(snapshot(*objects), pool_ref(POOL))
    failure = _pick(backend)
    assert failure.status == 503 and "serves port 8000" in failure.message
