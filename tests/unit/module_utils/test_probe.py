"""The endpoint probe against a real HTTP server on 127.0.0.1, started by the test."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import probe
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

POOL_HEADER = "x-sandbox-pool"
SLOW_SECONDS = 0.2
HANG_SECONDS = 3.0


class CompletionServer(ThreadingHTTPServer):
    """Answers POST /<behaviour> the way a gateway in that state would, and remembers what it got."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), CompletionHandler)
        self.lock = threading.Lock()
        self.received = []

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server_address[1], path)


class CompletionHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            count = len(self.server.received)
        behaviour = self.path.strip("/")
        if behaviour == "hang":
            time.sleep(HANG_SECONDS)
        if behaviour == "slow":
            time.sleep(SLOW_SECONDS)
        if behaviour == "flaky" and count % 2 == 0:
            self.answer(500, b'{"error": "no healthy upstream: endpoint picker unavailable"}')
            return
        pool = None if behaviour == "unlabelled" else ("pool-a" if count % 2 else "pool-b")
        self.answer(200, b'{"choices": [{"text": "hello"}]}', pool)

    def answer(self, status, payload, pool=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if pool:
            self.send_header(POOL_HEADER, pool)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    instance = CompletionServer()
    thread = threading.Thread(target=instance.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield instance
    instance.shutdown()
    instance.server_close()
    thread.join(5)


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthy_endpoint_passes_and_receives_the_seeds_request(server):
    result = probe.probe(server.url("/v1/completions"), "food-review", requests=20, concurrency=4,
                         group_by_header=POOL_HEADER)

    assert (result["sent"], result["ok"], result["failed_requests"], result["success_ratio"]) == (20, 20, 0, 1.0)
    assert result["status_codes"] == {"200": 20}
    assert result["by_header"] == {"pool-a": 10, "pool-b": 10}
    assert result["passed"] is True and result["reasons"] == [] and result["failure_samples"] == []
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert len(server.received) == 20
    request = server.received[0]
    assert request["body"] == {"model": "food-review", "prompt": "Hi", "max_tokens": 10, "temperature": 0}
    assert request["headers"]["Content-Type"] == "application/json"
    assert "20/20 requests" in result["summary"] and "pool-a: 10" in result["summary"]


def test_extra_headers_and_body_settings_are_sent(server):
    probe.probe(server.url("/v1/completions"), "meta-llama/Llama-3.1-8B-Instruct", prompt="Write a haiku",
                max_tokens=100, temperature=0.5, headers={"x-gateway-inference-objective": "base-model"},
                requests=1)

    (request,) = server.received
    assert request["body"] == {"model": "meta-llama/Llama-3.1-8B-Instruct", "prompt": "Write a haiku",
                               "max_tokens": 100, "temperature": 0.5}
    assert request["headers"]["x-gateway-inference-objective"] == "base-model"


def test_server_errors_lower_the_success_ratio_and_are_sampled(server):
    result = probe.probe(server.url("/flaky"), "food-review", requests=10, concurrency=1)

    assert (result["sent"], result["ok"], result["failed_requests"], result["success_ratio"]) == (10, 5, 5, 0.5)
    assert result["status_codes"] == {"200": 5, "500": 5}
    assert result["passed"] is False
    assert result["reasons"] == ["success ratio 0.5 (5 of 10 requests answered 2xx) is below the minimum 1.0"]
    assert [sample["status"] for sample in result["failure_samples"]] == [500] * 5
    assert [sample["request"] for sample in result["failure_samples"]] == [1, 3, 5, 7, 9]
    assert "endpoint picker unavailable" in result["failure_samples"][0]["body"]
    assert "FAILED: success ratio 0.5" in result["summary"]


def test_a_lower_success_threshold_accepts_the_same_errors(server):
    result = probe.probe(server.url("/flaky"), "food-review", requests=10, concurrency=1, min_success_ratio=0.5)

    assert result["success_ratio"] == 0.5 and result["passed"] is True


def test_slow_answers_are_measured_and_judged_by_p95(server):
    too_slow = probe.probe(server.url("/slow"), "food-review", requests=6, concurrency=3, max_p95_ms=50)
    fast_enough = probe.probe(server.url("/slow"), "food-review", requests=6, concurrency=3, max_p95_ms=5000)

    assert too_slow["latency_ms"]["p50"] >= SLOW_SECONDS * 1000
    assert too_slow["ok"] == 6 and too_slow["passed"] is False
    assert too_slow["reasons"] == ["p95 latency %s ms is above the maximum 50 ms" % too_slow["latency_ms"]["p95"]]
    assert fast_enough["passed"] is True


def test_answers_without_the_grouping_header_are_counted_as_absent(server):
    result = probe.probe(server.url("/unlabelled"), "food-review", requests=3, group_by_header=POOL_HEADER)

    assert result["by_header"] == {probe.HEADER_ABSENT: 3}


def test_a_hanging_endpoint_times_out_per_request_and_the_probe_ends_in_bounded_time(server):
    started = time.monotonic()
    result = probe.probe(server.url("/hang"), "food-review", requests=4, concurrency=2, timeout=0.3)
    elapsed = time.monotonic() - started

    # Two rounds of two requests, each cut at its 0.3 s timeout, far below the server's 3 s.
    assert elapsed < 1.5
    assert (result["sent"], result["ok"], result["failed_requests"]) == (4, 0, 4)
    assert result["status_codes"] == {"0": 4}
    assert result["latency_ms"] == {"p50": None, "p95": None, "p99": None, "max": None}
    assert "timeout" in result["failure_samples"][0]["error"]


def test_nothing_listening_is_a_failure_with_the_connection_error():
    result = probe.probe("http://127.0.0.1:%d/v1/completions" % closed_port(), "food-review", requests=3,
                         max_p95_ms=100)

    assert (result["ok"], result["failed_requests"], result["status_codes"]) == (0, 3, {"0": 3})
    assert "ConnectionRefusedError" in result["failure_samples"][0]["error"]
    assert result["reasons"] == [
        "success ratio 0.0 (0 of 3 requests answered 2xx) is below the minimum 1.0",
        "p95 latency cannot be measured: no request got an HTTP response (maximum 100 ms)",
    ]


def test_send_all_stops_waiting_at_the_deadline():
    release = threading.Event()

    def stuck():
        release.wait(10)
        return probe.Answer(200, 1.0, None, None, "")

    started = time.monotonic()
    answers, sent = probe.send_all(stuck, requests=5, concurrency=2, deadline=0.3)
    elapsed = time.monotonic() - started
    release.set()

    assert elapsed < 1.0
    assert answers == [None] * 5
    assert sent == [True, True, False, False, False]
    summary = probe.summarize(answers, sent, deadline=0.3)
    assert (summary["requests"], summary["sent"], summary["ok"], summary["failed_requests"]) == (5, 2, 0, 2)
    assert summary["failure_samples"][0]["error"] == "no answer before the probe's deadline of 0.3s"
    assert probe.evaluate(summary, min_success_ratio=0.0) == [
        "only 2 of 5 requests were sent before the probe's deadline"]


def test_the_deadline_allows_every_round_its_full_timeout():
    assert probe.deadline_seconds(requests=20, concurrency=4, timeout=10) == 5 * 10 + probe.DEADLINE_MARGIN_SECONDS
    assert probe.deadline_seconds(requests=3, concurrency=4, timeout=2) == 2 + probe.DEADLINE_MARGIN_SECONDS
    assert probe.deadline_seconds(requests=5, concurrency=2, timeout=1) == 3 + probe.DEADLINE_MARGIN_SECONDS


@pytest.mark.parametrize("settings, problem", [
    (dict(requests=0), "requests must be between 1 and 100000"),
    (dict(requests=probe.MAX_REQUESTS + 1), "requests must be between 1 and 100000"),
    (dict(concurrency=0), "concurrency must be between 1 and 64"),
    (dict(timeout=0), "timeout must be a positive number"),
    (dict(min_success_ratio=1.5), "min_success_ratio must be between 0 and 1"),
    (dict(max_p95_ms=0), "max_p95_ms must be positive"),
])
def test_unbounded_or_meaningless_settings_are_refused_before_sending(server, settings, problem):
    with pytest.raises(MigrationError) as refused:
        probe.probe(server.url("/v1/completions"), "food-review", **settings)

    assert problem in str(refused.value)
    assert server.received == []


@pytest.mark.parametrize("url", ["127.0.0.1:80/v1/completions", "ftp://127.0.0.1/x", "http:///v1/completions"])
def test_urls_without_scheme_or_host_are_refused(url):
    with pytest.raises(MigrationError, match="not an http:// or https:// URL"):
        probe.probe(url, "food-review")


def gateway(addresses=({"type": "IPAddress", "value": "203.0.113.7"},), listeners=None):
    return {
        "metadata": {"name": "inference-gateway", "namespace": "default"},
        "spec": {"listeners": listeners if listeners is not None else [
            {"name": "http", "port": 80, "protocol": "HTTP"},
            {"name": "alt", "port": 8080, "protocol": "HTTP"},
            {"name": "tls", "port": 443, "protocol": "HTTPS"},
        ]},
        "status": {"addresses": list(addresses)},
    }


def test_gateway_url_is_the_first_address_and_the_first_listeners_port():
    assert probe.gateway_url(gateway()) == "http://203.0.113.7:80/v1/completions"


def test_gateway_url_uses_the_named_listener_and_path():
    assert probe.gateway_url(gateway(), listener="alt", path="/v1/chat/completions") == \
        "http://203.0.113.7:8080/v1/chat/completions"


def test_gateway_url_brackets_ipv6_addresses():
    assert probe.gateway_url(gateway(addresses=[{"value": "2001:db8::7"}])) == "http://[2001:db8::7]:80/v1/completions"


@pytest.mark.parametrize("kwargs, message", [
    (dict(gateway=gateway(addresses=[])), "Gateway default/inference-gateway has no address in status.addresses yet"),
    (dict(gateway=gateway(), listener="grpc"),
     "Gateway default/inference-gateway has no listener grpc (its listeners: ['http', 'alt', 'tls'])"),
    (dict(gateway=gateway(listeners=[])), "Gateway default/inference-gateway has no listener at all"),
    (dict(gateway=gateway(), listener="tls"), "listener tls of Gateway default/inference-gateway speaks HTTPS"),
])
def test_gateway_url_refusals_name_the_gateway_and_the_fix(kwargs, message):
    with pytest.raises(MigrationError) as refused:
        probe.gateway_url(**kwargs)

    assert message in str(refused.value)
    assert str(refused.value).endswith("or give the probe a url")


def test_gateway_url_refuses_a_relative_path():
    with pytest.raises(MigrationError, match="path 'v1/completions' does not start with /"):
        probe.gateway_url(gateway(), path="v1/completions")


def test_several_targets_add_up_and_name_the_one_that_failed_first(server):
    healthy = probe.probe(server.url("/v1/completions"), "food-review", requests=10, concurrency=1)
    flaky = probe.probe(server.url("/flaky"), "qwen", requests=10, concurrency=1, headers={"Host": "qwen.example"})
    assert server.received[-1]["headers"]["Host"] == "qwen.example"

    result = probe.combine([("pool default/llama", healthy), ("pool default/qwen", flaky)])

    assert (result["requests"], result["sent"], result["ok"], result["failed_requests"]) == (20, 20, 15, 5)
    assert result["success_ratio"] == 0.75 and result["passed"] is False
    assert result["status_codes"] == {"200": 15, "500": 5}
    assert result["latency_ms"]["max"] == max(healthy["latency_ms"]["max"], flaky["latency_ms"]["max"])
    assert result["reasons"] == ["pool default/qwen: success ratio 0.5 (5 of 10 requests answered 2xx) is below "
                                 "the minimum 1.0"]
    assert result["summary"].startswith("FAILED pool default/qwen: 5/10 requests to %s" % server.url("/flaky"))
    assert "; pool default/llama: 10/10 requests" in result["summary"]
    assert {sample["target"] for sample in result["failure_samples"]} == {"pool default/qwen"}
    assert [target["name"] for target in result["targets"]] == ["pool default/llama", "pool default/qwen"]
    assert probe.combine([("pool default/llama", healthy)])["passed"] is True
