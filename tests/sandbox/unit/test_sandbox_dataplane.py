"""The data plane end to end on loopback sockets, fed a programme built from fake objects (no cluster), with a
fake epp-relay that keeps the relay's contract (epp_relay.py); the relay itself is tested in Go
(test_sandbox_epp_relay.py) and the real EPPs are in the integration tests."""

import http.client
import json
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from sandbox_fakes import EPP_IP, alpha_stack, gateway, model_pod, pool_ref, route, snapshot

from igw_sandbox import modelserver
from igw_sandbox.gateway import api, epp_relay, programme
from igw_sandbox.gateway.dataplane import DataPlane

POOL = "vllm-llama3-8b-instruct-preview"
POOL_ID = f"{api.ALPHA_GROUP}/default/{POOL}"
CHOSEN_POD = "vllm-1"
CHOSEN_IP = model_pod(CHOSEN_POD)["status"]["podIP"]
EPP_TARGET = f"{EPP_IP}:9002"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeRelay(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Plays the relay with an EPP at EPP_TARGET that sends model food-review to CHOSEN_POD (forwarding it there)
    and answers any other model 404 itself; any other EPP address fails as an unreachable EPP would."""

    daemon_threads = True

    def __init__(self, path):
        self.requests = []
        super().__init__(str(path), _FakeRelayHandler)


class _FakeRelayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass

    def do_POST(self):  # noqa: N802 - name fixed by the base class
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(dict(self.headers.items()))
        if self.headers[epp_relay.RELAY_EPP_HEADER] != EPP_TARGET:
            self._answer(502, epp_relay.EPP_FAILED, b"ext_proc stream to EPP: gRPC status Unavailable: refused")
        elif json.loads(body)["model"] != "food-review":
            self._answer(404, epp_relay.IMMEDIATE, b"no InferenceModel for this model")
        else:
            upstream = http.client.HTTPConnection(CHOSEN_IP, 8000, timeout=5)
            upstream.request("POST", self.path, body=body, headers={modelserver.POOL_HEADER: POOL_ID})
            response = upstream.getresponse()
            self._answer(response.status, epp_relay.FORWARDED, response.read(),
                         [(epp_relay.RELAY_ENDPOINT_HEADER, f"{CHOSEN_IP}:8000")])
            upstream.close()

    def _answer(self, status, outcome, body, headers=()):
        self.send_response(status)
        for name, value in [(epp_relay.RELAY_OUTCOME_HEADER, outcome), *headers]:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def relay(tmp_path):
    server = FakeRelay(tmp_path / "relay.sock")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def serve(relay):
    """serve(*objects) programs a data plane on 127.0.0.1 and returns a request function."""
    fleet = modelserver.ModelServerFleet(latency=0)
    dataplane = DataPlane(fleet, relay_socket=relay.server_address)
    port = _free_port()

    def program(*objects):
        objects = [gateway(port=port) if o["kind"] == "Gateway" else o for o in objects]
        fleet.sync([o for o in objects if o["kind"] == "Pod"])
        assert dataplane.activate(programme.build(snapshot(*objects), "127.0.0.1")) == {}

        def request(model="food-review", path="/v1/completions", headers=None):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("POST" if model else "GET", path,
                               body=json.dumps({"model": model, "prompt": "hi"}) if model else None,
                               headers=headers or {})
            response = connection.getresponse()
            body = response.read()
            connection.close()
            return response, body

        return request

    yield program
    dataplane.close()
    fleet.close()


def _route(*rules):
    return route("llm-route", list(rules))


def test_the_request_goes_to_the_pod_the_epp_names(serve, relay):
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    for _attempt in range(5):
        response, body = request()
        assert response.status == 200
        assert response.getheader(modelserver.POD_HEADER) == f"default/{CHOSEN_POD}"
        assert response.getheader(modelserver.POOL_HEADER) == POOL_ID
        assert json.loads(body)["sandbox"]["pool"] == POOL_ID
    assert len(relay.requests) == 5
    assert {(r[epp_relay.RELAY_EPP_HEADER], r[epp_relay.RELAY_EPP_POD_HEADER]) for r in relay.requests} == {
        (EPP_TARGET, f"uid-default-{POOL}-epp-0")}


def test_the_epps_own_answer_reaches_the_client_marked_as_the_epps(serve, relay):
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    response, body = request(model="no-such-model")
    assert response.status == 404 and body == b"no InferenceModel for this model"
    assert response.getheader(api.FAILURE_HEADER) == "EndpointPickerResponse"


def test_failures_say_why_in_status_body_and_header(serve):
    request = serve(*alpha_stack(available=0), _route(
        {"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}], "backendRefs": [pool_ref(POOL)]},
        {"matches": [{"path": {"type": "Exact", "value": "/zero"}}], "backendRefs": [pool_ref(POOL, weight=0)]},
        {"matches": [{"path": {"type": "Exact", "value": "/gone"}}], "backendRefs": [pool_ref("gone")]}))
    response, body = request()
    assert response.status == 503 and response.getheader(api.FAILURE_HEADER) == "EndpointPickerUnavailable"
    assert b"selects no ready pod" in body and b"failureMode FailClose" in body
    assert request(path="/zero")[0].status == 500
    response, body = request(path="/gone")
    assert response.status == 500 and response.getheader(api.FAILURE_HEADER) == "BackendNotFound"
    assert request(path="/elsewhere")[0].status == 404


def _epp_elsewhere(objects):
    """The stack with its EPP pod at an address where (for the fake relay) no EPP answers."""
    for obj in objects:
        if obj["kind"] == "Pod" and obj["status"].get("podIP") == EPP_IP:
            obj["status"]["podIP"] = "127.0.3.2"
    return objects


def test_an_epp_that_does_not_answer_fails_a_failclose_pool_and_a_failopen_pool_goes_to_a_ready_pod(serve):
    request = serve(*_epp_elsewhere(alpha_stack()), _route({"backendRefs": [pool_ref(POOL)]}))
    response, body = request()
    assert response.status == 503 and response.getheader(api.FAILURE_HEADER) == "EndpointPickerUnavailable"
    assert b"gRPC status Unavailable" in body and b"failureMode FailClose" in body
    request = serve(*_epp_elsewhere(alpha_stack(failure_mode=api.FAIL_OPEN)), _route({"backendRefs": [pool_ref(POOL)]}))
    response, body = request(model="not-registered-anywhere")
    assert response.status == 404 and response.getheader(api.FAILURE_HEADER) is None, \
        "FailOpen forwards the request unchanged, and vLLM answers an unknown model 404 itself"
    assert json.loads(body)["message"] == "The model `not-registered-anywhere` does not exist."


def test_a_relay_that_does_not_answer_counts_as_an_unreachable_epp(serve, relay):
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    relay.shutdown()
    relay.server_close()
    relay.socket.close()
    response, body = request()
    assert response.status == 503 and response.getheader(api.FAILURE_HEADER) == "EndpointPickerUnavailable"
    assert b"EPP relay" in body and relay.server_address.encode() in body


def test_stats_count_what_was_served_per_pool_and_failure(serve, relay):
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    for _request in range(3):
        request()
    request(model="no-such-model")
    stats = json.loads(request(model=None, path=api.STATS_PATH)[1])["stats"]
    assert stats["requests"] == 4
    assert stats["by_pool"] == {POOL_ID: {"200": 3, "404": 1}}
    assert stats["by_pod"] == {f"default/{CHOSEN_POD}": 3}
    assert stats["failures"] == {"EndpointPickerResponse": 1}
