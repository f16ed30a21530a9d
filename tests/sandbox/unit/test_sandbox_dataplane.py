"""The data plane end to end on loopback sockets, fed a programme built from fake objects (no cluster)."""

import http.client
import json
import socket

import pytest
from sandbox_fakes import alpha_stack, gateway, pool_ref, route, snapshot

from igw_sandbox import modelserver
from igw_sandbox.gateway import api, programme
from igw_sandbox.gateway.dataplane import DataPlane

POOL = "vllm-llama3-8b-instruct-preview"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serve():
    """serve(*objects) programs a data plane on 127.0.0.1 and returns a request function."""
    fleet = modelserver.ModelServerFleet(latency=0)
    dataplane = DataPlane("127.0.0.1", fleet)
    port = _free_port()

    def program(*objects):
        objects = [gateway(port=port) if o["kind"] == "Gateway" else o for o in objects]
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


def test_request_is_forwarded_to_a_simulated_pod_of_the_pool(serve):
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    response, body = request()
    assert response.status == 200
    assert response.getheader(modelserver.POOL_HEADER) == f"{api.ALPHA_GROUP}/default/{POOL}"
    assert response.getheader(modelserver.POD_HEADER).startswith("default/vllm-")
    assert json.loads(body)["sandbox"]["pool"] == f"{api.ALPHA_GROUP}/default/{POOL}"


def test_failures_say_why_in_status_body_and_header(serve):
    request = serve(*alpha_stack(available=0), _route(
        {"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}], "backendRefs": [pool_ref(POOL)]},
        {"matches": [{"path": {"type": "Exact", "value": "/zero"}}], "backendRefs": [pool_ref(POOL, weight=0)]},
        {"matches": [{"path": {"type": "Exact", "value": "/gone"}}], "backendRefs": [pool_ref("gone")]}))
    response, body = request()
    assert response.status == 503 and response.getheader(api.FAILURE_HEADER) == "EndpointPickerUnavailable"
    assert b"no available replicas" in body
    assert request(path="/zero")[0].status == 500
    response, body = request(path="/gone")
    assert response.status == 500 and response.getheader(api.FAILURE_HEADER) == "BackendNotFound"
    assert request(path="/elsewhere")[0].status == 404


def test_unknown_model_is_rejected_by_the_simulated_v0_epp(serve):
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    response, body = request(model="no-such-model")
    assert response.status == 404 and b"no-such-model" in body


def test_stats_count_what_was_served_per_pool_and_failure(serve):
    request = serve(*alpha_stack(), _route({"backendRefs": [pool_ref(POOL)]}))
    for _request in range(3):
        request()
    request(model="no-such-model")
    stats = json.loads(request(model=None, path=api.STATS_PATH)[1])["stats"]
    assert stats["requests"] == 4
    assert stats["by_pool"] == {f"{api.ALPHA_GROUP}/default/{POOL}": {"200": 3, "404": 1}}
    assert stats["failures"] == {"ModelNotFound": 1}
