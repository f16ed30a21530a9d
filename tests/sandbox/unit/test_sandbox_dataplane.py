"""The data plane end to end on loopback sockets, fed a programme built from fake objects (no cluster),
with a fake endpoint picker speaking ext_proc (the real EPPs are in the integration tests)."""

import http.client
import json
import socket
from concurrent import futures

import grpc
import pytest
from sandbox_fakes import EPP_IP, alpha_stack, gateway, model_pod, pool_ref, route, snapshot

from igw_sandbox import modelserver
from igw_sandbox.gateway import api, extproc, programme
from igw_sandbox.gateway.dataplane import DataPlane

POOL = "vllm-llama3-8b-instruct-preview"
POOL_ID = f"{api.ALPHA_GROUP}/default/{POOL}"
CHOSEN_POD = "vllm-1"
CHOSEN_IP = model_pod(CHOSEN_POD)["status"]["podIP"]


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ProcessingResponse as the v1.0.0 EPP writes it; field numbers as in extproc.py's sources.
def _header_mutation(headers):
    values = [extproc._len_field(1, k.encode()) + extproc._len_field(3, v.encode()) for k, v in headers]
    return b"".join(extproc._len_field(1, extproc._len_field(1, value)) for value in values)


def _headers_answer(endpoint):
    common = extproc._len_field(2, _header_mutation([("x-gateway-destination-endpoint", endpoint)]))
    return extproc._len_field(1, extproc._len_field(1, common))


def _body_answer(body):
    streamed = extproc._len_field(1, body) + extproc._bool_field(2, True)
    common = extproc._len_field(3, extproc._len_field(3, streamed))
    return extproc._len_field(3, extproc._len_field(1, common))


def _immediate_answer(status, body):
    return extproc._len_field(7, extproc._len_field(1, extproc._varint(1 << 3) + extproc._varint(status))
                              + extproc._len_field(3, body))


class FakeEpp:
    """Sends every request for model food-review to CHOSEN_POD and answers any other model 404 itself."""

    def __init__(self):
        self.requests = 0

    def process(self, messages, context):
        body = b""
        for message in messages:
            decoded = extproc._Fields(message)
            if decoded.has(4, extproc._LEN):  # request_body
                body += extproc._Fields(decoded.last(4, extproc._LEN, b"")).last(1, extproc._LEN, b"")
                self.requests += 1
                if json.loads(body).get("model") != "food-review":
                    yield _immediate_answer(404, b"no InferenceModel for this model")
                    return
                yield _headers_answer(f"{CHOSEN_IP}:8000")
                yield _body_answer(body)
            elif decoded.has(3, extproc._LEN) or decoded.has(5, extproc._LEN):  # response headers or body
                yield extproc._len_field(2 if decoded.has(3, extproc._LEN) else 4, b"")


@pytest.fixture
def fake_epp():
    """A fake EPP at the EPP pod's address of the fakes, port 9002."""
    epp = FakeEpp()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "envoy.service.ext_proc.v3.ExternalProcessor", {"Process": grpc.stream_stream_rpc_method_handler(
            epp.process)})])
    server.add_insecure_port(f"{EPP_IP}:9002")
    server.start()
    yield epp
    server.stop(grace=None)


@pytest.fixture
def serve():
    """serve(*objects) programs a data plane on 127.0.0.1 and returns a request function."""
    fleet = modelserver.ModelServerFleet(latency=0)
    dataplane = DataPlane("127.0.0.1", fleet)
    port = _free_port()

    def program(*objects):
        objects = [gateway(port=port) if o["kind"] == "Gateway" else o for o in objects]
        fleet.sync([o for o in objects if o["kind"] == "Pod"])
        assert dataplane.activate(programme.build(snapshot(*objects))) == {}

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


def test_the_request_goes_to_the_pod_the_epp_names(serve, fake_epp):
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    for _attempt in range(5):
        response, body = request()
        assert response.status == 200
        assert response.getheader(modelserver.POD_HEADER) == f"default/{CHOSEN_POD}"
        assert response.getheader(modelserver.POOL_HEADER) == POOL_ID
        assert json.loads(body)["sandbox"]["pool"] == POOL_ID
    assert fake_epp.requests == 5


def test_the_epps_own_answer_reaches_the_client_marked_as_the_epps(serve, fake_epp):
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


def test_an_epp_that_does_not_answer_fails_a_failclose_pool_and_a_failopen_pool_goes_to_a_ready_pod(serve):
    # No fake EPP runs: the EPP pod exists but nothing listens at its address.
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    response, body = request()
    assert response.status == 503 and b"UNAVAILABLE" in body
    request = serve(*alpha_stack(failure_mode=api.FAIL_OPEN), _route({"backendRefs": [pool_ref(POOL)]}))
    response, body = request(model="not-registered-anywhere")
    assert response.status == 404 and response.getheader(api.FAILURE_HEADER) is None, \
        "FailOpen forwards the request unchanged, and vLLM answers an unknown model 404 itself"
    assert json.loads(body)["message"] == "The model `not-registered-anywhere` does not exist."


def test_stats_count_what_was_served_per_pool_and_failure(serve, fake_epp):
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    for _request in range(3):
        request()
    request(model="no-such-model")
    stats = json.loads(request(model=None, path=api.STATS_PATH)[1])["stats"]
    assert stats["requests"] == 4
    assert stats["by_pool"] == {POOL_ID: {"200": 3, "404": 1}}
    assert stats["by_pod"] == {f"default/{CHOSEN_POD}": 3}
    assert stats["failures"] == {"EndpointPickerResponse": 1}
