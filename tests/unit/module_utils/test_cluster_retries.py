"""An API server that stops answering for a while (a restart): which calls Cluster sends again, and what it says.

The client below is the dynamic client's interface over one stored HTTPRoute, failing as a test scripts
it, with the exceptions the real stack raises: urllib3's for a refused or broken connection, the dynamic
client's for an answer. The clock is fake, so that a minute of outage takes no time.
"""

import copy
import json
import ssl
from http.client import RemoteDisconnected

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import api_exception
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError, SSLError

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, cluster, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import (
    Cluster, ClusterError, Conflict, Unreachable,
)
from support import Clock

SERVER = "https://127.0.0.1:6443"
ROUTE_PATH = "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/r"

# What the next requests meet, one script entry per request:
REFUSED = "refused"  # no connection: the request never reached the API server
LOST = "lost"  # the API server acted on the request, then the connection broke before the answer
ANSWERED = "answered"  # (ANSWERED, error): the API server answered with that error without acting


class _Response:
    def __init__(self, data):
        self.data = json.dumps(data).encode()


def _refused():
    return MaxRetryError(None, ROUTE_PATH, NewConnectionError(None, "Failed to establish a new connection: "
                                                                    "[Errno 111] Connection refused"))


def _lost():
    return ProtocolError("Connection aborted.", RemoteDisconnected("Remote end closed connection without response"))


def _answer(status, message, retry_after=None):
    error = ApiException(status=status, reason=message)
    error.body = json.dumps({"message": message})
    error.headers = {"Retry-After": str(retry_after)} if retry_after else {}
    try:
        raise error
    except ApiException as e:
        return api_exception(e)


class _Configuration:
    host = SERVER


class _Server:
    """The dynamic client over one HTTPRoute (absent when ``route`` is None), failing as ``script`` says."""

    def __init__(self, route=None, script=(), host=SERVER):
        self.route = route
        self.version = 1
        self.script = list(script)
        self.applied = []  # the writes the API server acted on, in order
        self.requests = []
        self.configuration = _Configuration()
        self.configuration.host = host

    def request(self, method, path, body=None, serialize=True, **params):
        self.requests.append((method, path))
        failure = self.script.pop(0) if self.script else None
        if failure == REFUSED:
            raise _refused()
        if isinstance(failure, tuple) and failure[0] == ANSWERED:
            raise failure[1]
        answer = self._act(method, body)
        if failure == LOST:
            raise _lost()
        return _Response(answer)

    def _act(self, method, body):
        if method == "get":
            if self.route is None:
                raise _answer(404, "not found")
            return copy.deepcopy(self.route)
        if method == "post":
            if self.route is not None:
                raise _answer(409, 'httproutes "r" already exists')
            return self._store(body)
        if method == "put":
            if self.route["metadata"]["resourceVersion"] != body["metadata"].get(
                    "resourceVersion", self.route["metadata"]["resourceVersion"]):
                raise _answer(409, "the object has been modified; please apply your changes to the latest version")
            return self._store(body)
        if method == "delete":
            if self.route is None:
                raise _answer(404, "not found")
            self.applied.append("delete")
            self.route = None
            return {}
        raise AssertionError(method)

    def _store(self, body):
        self.version += 1
        self.route = copy.deepcopy(body)
        self.route["metadata"]["resourceVersion"] = str(self.version)
        self.applied.append(copy.deepcopy(self.route))
        return copy.deepcopy(self.route)

    def edit(self, **fields):
        """Another writer's write, landing between two of ours."""
        self._store(dict(copy.deepcopy(self.route), **fields))


def _route(**fields):
    return dict({"metadata": {"name": "r", "namespace": "ns", "resourceVersion": "1"}, "weights": 0, "labels": 0},
                **fields)


def _cluster(server):
    clock = Clock()
    return Cluster(server, clock=clock, sleep=clock.sleep), clock


def test_a_refused_connection_is_tried_again_with_back_off_until_the_api_server_answers():
    server = _Server(_route(), script=[REFUSED, REFUSED, REFUSED])
    client, clock = _cluster(server)
    assert client.get(api.HTTP_ROUTE, "r", "ns")["weights"] == 0
    assert len(server.requests) == 4 and clock.sleeps == [0.5, 1.0, 2.0]
    (interruption,) = client.interruptions
    assert interruption.startswith("GET %s (%s) answered after 4 attempts over 4 s" % (ROUTE_PATH, SERVER))
    assert "Connection refused" in interruption


def test_making_the_client_which_reads_the_server_version_rides_over_a_refused_connection_too():
    attempts = []

    class _Made:
        client = _Server(_route())

    def make_client():
        attempts.append(1)
        if len(attempts) < 3:
            raise _refused()
        return _Made

    clock = Clock()
    client = Cluster._connected(make_client, clock=clock, sleep=clock.sleep)
    assert len(attempts) == 3 and client.get(api.HTTP_ROUTE, "r", "ns")["weights"] == 0
    (interruption,) = client.interruptions
    assert interruption.startswith(
        "GET /version (making the kubernetes.core client) answered after 3 attempts over 2 s")


def test_a_503_while_the_api_server_starts_is_tried_again_after_its_retry_after_within_the_bound():
    server = _Server(_route(), script=[(ANSWERED, _answer(503, "server is starting", retry_after=10)),
                                       (ANSWERED, _answer(429, "slow down"))])
    client, clock = _cluster(server)
    assert client.get(api.HTTP_ROUTE, "r", "ns") is not None
    assert clock.sleeps == [cluster.RETRY_MAX_PAUSE, 1.0]


def test_a_put_applied_then_lost_is_sent_again_and_its_conflict_reread_without_losing_an_edit():
    server = _Server(_route(), script=[None, LOST])
    client, _clock = _cluster(server)

    def change(live):
        return None if live["weights"] == 50 else dict(live, weights=50)

    # Between our applied first attempt and its replay, another writer changes its own field.
    original_request = server.request

    def request(method, path, body=None, **params):
        if method == "put" and len(server.applied) == 1:
            server.edit(labels=7)
        return original_request(method, path, body=body, **params)

    server.request = request
    written = waiting.read_modify_write(lambda: client.get(api.HTTP_ROUTE, "r", "ns"), change,
                                        lambda body: client.replace(api.HTTP_ROUTE, body), "route r",
                                        sleep=lambda _seconds: None)
    assert written.body is None, "the re-read found our change applied: nothing is written twice"
    assert server.route["weights"] == 50 and server.route["labels"] == 7
    assert [w["weights"] for w in server.applied if isinstance(w, dict)] == [50, 50]
    assert [m for m, _p in server.requests] == ["get", "put", "put", "get"]


def test_a_put_without_resource_version_that_may_have_been_applied_is_not_sent_twice():
    route = _route()
    del route["metadata"]["resourceVersion"]
    server = _Server(_route(), script=[LOST])
    client, _clock = _cluster(server)
    with pytest.raises(Unreachable) as raised:
        client.replace(api.HTTP_ROUTE, dict(route, weights=50))
    assert len(server.requests) == 1
    assert str(raised.value).startswith("PUT %s (%s): " % (ROUTE_PATH, SERVER))
    assert "not safe to send twice" in str(raised.value) and "run the playbook again" in str(raised.value)


def test_a_put_without_resource_version_that_never_reached_the_api_server_is_sent_again():
    route = _route()
    del route["metadata"]["resourceVersion"]
    server = _Server(_route(), script=[REFUSED])
    client, _clock = _cluster(server)
    assert client.replace(api.HTTP_ROUTE, dict(route, weights=50))["weights"] == 50
    assert len(server.requests) == 2


def test_a_create_applied_then_lost_meets_already_exists_and_says_the_first_attempt_may_have_made_it():
    server = _Server(None, script=[LOST])
    client, _clock = _cluster(server)
    with pytest.raises(Conflict) as raised:
        client.create(api.HTTP_ROUTE, {"metadata": {"name": "r", "namespace": "ns"}, "weights": 0})
    assert raised.value.status == 409 and len(server.applied) == 1
    assert "already exists" in str(raised.value) and "may have been applied" in str(raised.value)


def test_a_delete_applied_then_lost_finds_the_object_gone_on_the_replay():
    server = _Server(_route(), script=[LOST])
    client, _clock = _cluster(server)
    assert client.delete(api.HTTP_ROUTE, "r", "ns") is False
    assert server.route is None and server.applied == ["delete"]


def test_an_api_server_unreachable_for_the_whole_time_fails_naming_the_call_and_never_a_credential():
    server = _Server(_route(), script=[REFUSED] * 1000, host="https://admin:s3cret@127.0.0.1:6443")
    client, clock = _cluster(server)
    with pytest.raises(Unreachable) as raised:
        client.get(api.HTTP_ROUTE, "r", "ns")
    message = str(raised.value)
    assert message.startswith("GET %s (%s): the API server was unreachable for 60 s (" % (ROUTE_PATH, SERVER))
    assert "run the playbook again once it answers: the run resumes where it stopped" in message
    assert "s3cret" not in message and "admin" not in message
    assert clock.now == cluster.UNREACHABLE_SECONDS and max(clock.sleeps) == cluster.RETRY_MAX_PAUSE
    assert client.interruptions == []


def test_a_connection_closed_in_the_tls_handshake_is_tried_again_and_a_bad_certificate_is_not():
    # urllib3 retries both a few times itself, then raises MaxRetryError with the SSLError as the reason.
    closed = SSLError(ssl.SSLEOFError(8, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol"))
    untrusted = SSLError(ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"))
    assert cluster.failed_attempt(MaxRetryError(None, "/version", closed)) == cluster.MAYBE_APPLIED
    assert cluster.failed_attempt(MaxRetryError(None, "/version", untrusted)) is None


def test_an_answer_that_trying_again_does_not_change_is_raised_at_once():
    server = _Server(_route(), script=[(ANSWERED, _answer(403, "forbidden"))])
    client, clock = _cluster(server)
    with pytest.raises(ClusterError) as raised:
        client.get(api.HTTP_ROUTE, "r", "ns")
    assert raised.value.status == 403 and len(server.requests) == 1 and clock.sleeps == []


def test_a_poll_that_finds_the_api_server_unreachable_keeps_polling_until_its_timeout():
    clock = Clock()
    answers = iter([Unreachable("GET x: unreachable"), "pending", "done"])

    def read():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    polled = waiting.poll(read, lambda value: value == "done", 600, clock=clock, sleep=clock.sleep)
    assert polled.done and clock.sleeps == [waiting.POLL_SECONDS] * 2


def test_a_poll_still_unreachable_at_its_timeout_raises_it():
    clock = Clock()

    def read():
        clock.now += 60
        raise Unreachable("GET x: unreachable")

    with pytest.raises(Unreachable):
        waiting.poll(read, bool, 100, clock=clock, sleep=clock.sleep)
