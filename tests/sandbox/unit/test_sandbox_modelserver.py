import http.client
import json

import pytest

from sandbox_fakes import model_pod

from igw_sandbox import modelserver


@pytest.mark.parametrize("argv, names, port", [
    (["--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000", "--enable-lora",
      "--lora-modules", "food-review=/adapters/food-review", "cad-fabricator=/adapters/cad"],
     ("meta-llama/Llama-3.1-8B-Instruct", "food-review", "cad-fabricator"), 8000),
    (["--model=m", "--served-model-name", "alias", "other-alias", "--port=8100"], ("alias",), 8100),
    (["--model", "m", "--lora-modules", '{"name": "sql-lora", "path": "/a"}'], ("m", "sql-lora"), 8000),
])
def test_vllm_args_give_the_served_model_names_and_port(argv, names, port):
    served = modelserver.parse_vllm_args(argv)
    assert (served.names, served.port) == (names, port)


def test_a_pod_without_model_arg_is_not_a_model_server():
    assert modelserver.parse_vllm_args(["-poolName", "x"]) is None
    pod = {"spec": {"containers": [{"name": "epp", "args": ["-poolName", "x"]},
                                   {"name": "vllm", "command": ["python3", "-m", "vllm"], "args": ["--model", "m"]}]}}
    assert modelserver.pod_served_models(pod).base == "m"


@pytest.fixture
def server():
    served = modelserver.parse_vllm_args(["--model", "base", "--lora-modules", "food-review=/a"])
    instance = modelserver.ModelServer("default/vllm-0", served, latency=0, ip="127.0.0.1", port=0)
    yield instance
    instance.stop()


def _request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(method, path, body=json.dumps(body) if body else None, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def test_completion_for_a_served_model_names_the_pod_and_the_pool(server):
    pool = "inference.networking.x-k8s.io/default/p"
    completion = {"model": "food-review", "prompt": "hi", "max_tokens": 3}
    response, data = _request(server, "POST", "/v1/completions", completion, {modelserver.POOL_HEADER: pool})
    body = json.loads(data)
    assert response.status == 200
    assert response.getheader(modelserver.POD_HEADER) == "default/vllm-0"
    assert response.getheader(modelserver.POOL_HEADER) == pool
    assert body["sandbox"] == {"pod": "default/vllm-0", "pool": pool, "model": "food-review"}
    assert body["model"] == "food-review" and body["usage"]["completion_tokens"] == 3


def test_chat_completion_answers_with_an_assistant_message(server):
    response, data = _request(server, "POST", "/v1/chat/completions",
                              {"model": "base", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status == 200
    assert json.loads(data)["choices"][0]["message"]["role"] == "assistant"


def test_unknown_model_gets_vllms_404(server):
    response, data = _request(server, "POST", "/v1/completions", {"model": "gpt-4", "prompt": "hi"})
    assert response.status == 404
    assert json.loads(data)["message"] == "The model `gpt-4` does not exist."


def test_models_health_and_metrics_endpoints(server):
    response, data = _request(server, "GET", "/v1/models")
    models = {m["id"]: m["parent"] for m in json.loads(data)["data"]}
    assert models == {"base": None, "food-review": "base"}
    assert _request(server, "GET", "/health")[0].status == 200
    _request(server, "POST", "/v1/completions", {"model": "base", "prompt": "hi"})
    metrics = _request(server, "GET", "/metrics")[1].decode()
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc",
                 "vllm:lora_requests_info"):
        assert name in metrics
    assert 'vllm:request_success_total{finished_reason="length",model_name="base"} 1' in metrics


def _health(address):
    connection = http.client.HTTPConnection(*address, timeout=2)
    connection.request("GET", "/health")
    return connection.getresponse().status


def test_fleet_serves_each_ready_vllm_pod_at_its_ip_and_stops_it_when_the_pod_goes():
    pod_a, pod_b = model_pod("a", ip="127.0.4.1"), model_pod("b", ip="127.0.4.2")
    not_ready = model_pod("c", ready=False, ip="127.0.4.3")
    fleet = modelserver.ModelServerFleet(latency=0)
    try:
        fleet.sync([pod_a, pod_b, not_ready])
        assert set(fleet.describe()) == {"default/a", "default/b"}
        assert _health(("127.0.4.1", 8000)) == 200 and _health(("127.0.4.2", 8000)) == 200
        fleet.sync([pod_a])
        assert set(fleet.describe()) == {"default/a"}
        with pytest.raises(ConnectionRefusedError):
            _health(("127.0.4.2", 8000))
    finally:
        fleet.close()
    with pytest.raises(ConnectionRefusedError):
        _health(("127.0.4.1", 8000))


def test_a_new_pod_that_gets_a_deleted_pods_ip_takes_over_its_address():
    fleet = modelserver.ModelServerFleet(latency=0)
    try:
        fleet.sync([model_pod("old", ip="127.0.4.5")])
        fleet.sync([model_pod("new", ip="127.0.4.5")])
        assert fleet.describe() == {"default/new": {"address": "127.0.4.5:8000",
                                                    "models": ["meta-llama/Llama-3.1-8B-Instruct", "food-review"]}}
    finally:
        fleet.close()
