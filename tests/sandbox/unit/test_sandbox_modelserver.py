import http.client
import json
import re
import threading
import time

import pytest

from sandbox_fakes import model_pod

from igw_sandbox import modelserver, versions


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


def test_max_num_seqs_is_vllms_default_unless_the_pod_sets_it():
    assert modelserver.parse_vllm_args(["--model", "m"]).max_num_seqs == 256
    assert modelserver.parse_vllm_args(["--model", "m", "--max-num-seqs", "4"]).max_num_seqs == 4


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


def test_a_kept_connection_to_a_deleted_pod_is_closed_and_does_not_answer_for_the_new_pod_at_its_ip():
    fleet = modelserver.ModelServerFleet(latency=0)
    try:
        fleet.sync([model_pod("old", ip="127.0.4.6")])
        kept = http.client.HTTPConnection("127.0.4.6", 8000, timeout=5)
        kept.request("GET", "/health")
        assert kept.getresponse().read() == b""  # kept open for the next request
        fleet.sync([model_pod("new", ip="127.0.4.6")])
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            kept.request("POST", "/v1/completions", body=json.dumps({"model": "food-review", "prompt": "hi"}))
            kept.getresponse()
        kept.close()
        fresh = http.client.HTTPConnection("127.0.4.6", 8000, timeout=5)
        fresh.request("POST", "/v1/completions", body=json.dumps({"model": "food-review", "prompt": "hi"}))
        assert fresh.getresponse().getheader(modelserver.POD_HEADER) == "default/new"
        fresh.close()
    finally:
        fleet.close()


# What each release's endpoint picker scrapes by default, from its sources: v0.3.0 cmd/epp/main.go
# (-totalQueuedRequestsMetric, -kvCacheUsagePercentageMetric, -loraInfoMetric), v0.5.1
# pkg/epp/server/runserver.go (same flags), v1.0.0 pkg/epp/server/runserver.go
# (--total-queued-requests-metric, --kv-cache-usage-percentage-metric, --lora-info-metric); the LoRA
# labels are those of pkg/epp/backend/metrics/metrics.go in each. v1.3.0 and v1.5.0
# pkg/epp/server/options.go add --total-running-requests-metric and --cache-info-metric and rename
# the KV-cache metric to vLLM 0.10's.
EPP_METRICS = {
    release: {"queued": "vllm:num_requests_waiting", "kv_cache": "vllm:gpu_cache_usage_perc",
              "lora_info": "vllm:lora_requests_info"}
    for release in ("v0.3.0", "v0.5.1", "v1.0.0")
}
EPP_METRICS.update({
    release: {"queued": "vllm:num_requests_waiting", "running": "vllm:num_requests_running",
              "kv_cache": "vllm:kv_cache_usage_perc", "lora_info": "vllm:lora_requests_info",
              "cache_info": "vllm:cache_config_info"}
    for release in ("v1.3.0", "v1.5.0")
})
# v1.3.0/v1.5.0 metrics.go read these labels of cache_config_info as integers.
CACHE_INFO_LABELS = {"block_size", "num_gpu_blocks"}
LORA_LABELS = {"running_lora_adapters", "waiting_lora_adapters", "max_lora"}
SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$')
LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{metric name: {"type": ..., "samples": [(labels, value)]}} from the Prometheus text format."""
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _type, _hash, name, kind = line.split(" ", 3)
            assert name not in families, f"second TYPE line for {name}"
            families[name] = {"type": kind, "samples": []}
        elif line and not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            labels = {m["key"]: re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e[1], e[1]), m["value"])
                      for m in LABEL.finditer(match["labels"] or "")}
            assert match["name"] in families, f"{match['name']} has no TYPE line before its samples"
            families[match["name"]]["samples"].append((labels, float(match["value"])))
    return families


def served(*args):
    return modelserver.parse_vllm_args(["--model", "meta-llama/Llama-3.1-8B-Instruct", *args])


def lora_filter_passes(release, lora_info, model):
    """v0.3.0 lowLoRACostPredicate, v0.5.1 LoraAffinityFilter, v1.0.0 LoraAffinityScorer (score 1 or 0.8;
    not in its default config): the adapter is active (or waiting, from v0.5) or the pod has room under max_lora."""
    running = set(filter(None, lora_info["running_lora_adapters"].split(",")))
    waiting = set(filter(None, lora_info["waiting_lora_adapters"].split(",")))
    if release == "v0.3.0":
        active = running | waiting
        return model in active or len(active) < int(lora_info["max_lora"])
    return model in running or model in waiting or len(running) + len(waiting) < int(lora_info["max_lora"])


def test_the_releases_whose_metrics_are_checked_are_those_the_sandbox_builds():
    assert set(EPP_METRICS) == set(versions.GIE_RELEASES)


@pytest.mark.parametrize("release", sorted(EPP_METRICS))
def test_an_idle_pod_serves_every_metric_the_release_reads_and_is_a_candidate_for_each_model(release):
    pod = served("--enable-lora", "--lora-modules", "food-review=/a", "cad-fabricator=/b")
    now = time.time()
    families = parse_exposition(modelserver.vllm_metrics_text(pod, running=0, waiting=0, succeeded={}, now=now))
    wanted = EPP_METRICS[release]
    for name in wanted.values():
        assert families[name]["type"] == "gauge" and families[name]["samples"], name
    # The EPP reads one series of each (without label selectors, the first): there must be exactly one.
    [(_labels, queued)] = families[wanted["queued"]]["samples"]
    [(_kv_labels, kv_cache)] = families[wanted["kv_cache"]]["samples"]
    [(lora_info, stamp)] = families[wanted["lora_info"]]["samples"]
    assert (queued, kv_cache) == (0, 0)
    assert set(lora_info) == LORA_LABELS
    assert lora_info["running_lora_adapters"].split(",") == ["food-review", "cad-fabricator"]
    assert abs(stamp - now) < 0.01
    if "cache_info" in wanted:
        [(cache_info, _one)] = families[wanted["cache_info"]]["samples"]
        assert set(cache_info) >= CACHE_INFO_LABELS and all(int(cache_info[k]) > 0 for k in CACHE_INFO_LABELS)
    for model in pod.names:
        assert lora_filter_passes(release, lora_info, model), model


def test_a_pod_without_adapters_exports_no_lora_info_as_vllm_without_lora():
    families = parse_exposition(modelserver.vllm_metrics_text(served(), 0, 0, {}, time.time()))
    assert "vllm:lora_requests_info" not in families
    assert {"vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc"} <= set(families)


def test_queue_and_cache_follow_the_requests_in_and_beyond_the_batch():
    families = parse_exposition(modelserver.vllm_metrics_text(served("--max-num-seqs", "4"), 2, 3,
                                                              {"food-review": 7}, time.time()))
    value = {name: family["samples"][0][1] for name, family in families.items()}
    assert value["vllm:num_requests_running"] == 2 and value["vllm:num_requests_waiting"] == 3
    assert value["vllm:gpu_cache_usage_perc"] == 0.5
    assert families["vllm:request_success_total"] == {
        "type": "counter", "samples": [({"finished_reason": "length", "model_name": "food-review"}, 7.0)]}


def test_label_values_are_escaped():
    pod = modelserver.ServedModels(base='odd"model\\name', loras=(), port=8000)
    families = parse_exposition(modelserver.vllm_metrics_text(pod, 0, 0, {}, time.time()))
    assert families["vllm:num_requests_waiting"]["samples"][0][0] == {"model_name": 'odd"model\\name'}


def _metric_values(server):
    families = parse_exposition(_request(server, "GET", "/metrics")[1].decode())
    return {name: families[name]["samples"][0][1]
            for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc")}


def test_in_flight_requests_are_counted_as_running_then_waiting_beyond_max_num_seqs():
    server = modelserver.ModelServer("default/vllm-0", served("--max-num-seqs", "1"), latency=0, ip="127.0.0.1", port=0)
    idle = {"vllm:num_requests_running": 0, "vllm:num_requests_waiting": 0, "vllm:gpu_cache_usage_perc": 0}
    try:
        assert _metric_values(server) == idle
        server._httpd.state.begin()  # the one batch slot is taken: the next request must wait for it
        assert _metric_values(server) == dict(idle, **{"vllm:num_requests_running": 1,
                                                       "vllm:gpu_cache_usage_perc": 1})
        answers = []
        client = threading.Thread(target=lambda: answers.append(_request(
            server, "POST", "/v1/completions", {"model": "meta-llama/Llama-3.1-8B-Instruct"})[0].status))
        client.start()
        deadline = time.monotonic() + 10
        while _metric_values(server)["vllm:num_requests_waiting"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _metric_values(server) == {"vllm:num_requests_running": 1, "vllm:num_requests_waiting": 1,
                                          "vllm:gpu_cache_usage_perc": 1}
        assert answers == []
        server._httpd.state.end(None)  # frees the slot: the waiting request runs and completes
        client.join(timeout=10)
        assert answers == [200] and _metric_values(server) == idle
    finally:
        server.stop()
