import json

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import GoneError

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import Cluster, ClusterError


class _Response:
    def __init__(self, data):
        self.data = json.dumps(data).encode()


class _RecordingClient:
    def __init__(self):
        self.calls = []

    def request(self, method, path, body=None, serialize=True, **params):
        self.calls.append((method, path, body, params))
        return _Response({})


def test_a_dry_run_delete_says_so_in_the_body_the_api_server_reads():
    client = _RecordingClient()
    Cluster(client, dry_run=True).delete(api.ALPHA_POOL, "p", "ns", resource_version="7")
    method, path, body, params = client.calls[0]
    assert (method, path) == ("delete", "/apis/inference.networking.x-k8s.io/v1alpha2/namespaces/ns/inferencepools/p")
    assert body["dryRun"] == ["All"] and params["dry_run"] == "All"
    assert body["preconditions"] == {"resourceVersion": "7"}


def test_a_real_delete_carries_no_dry_run():
    client = _RecordingClient()
    Cluster(client).delete(api.CRD, api.ALPHA_POOL.crd_name)
    _method, path, body, params = client.calls[0]
    assert path == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + api.ALPHA_POOL.crd_name
    assert "dryRun" not in body and "dry_run" not in params


def test_writes_in_check_mode_are_server_side_dry_runs_and_reads_are_not():
    client = _RecordingClient()
    cluster = Cluster(client, dry_run=True)
    cluster.replace(api.HTTP_ROUTE, {"metadata": {"name": "r", "namespace": "ns", "resourceVersion": "1"}})
    cluster.get(api.HTTP_ROUTE, "r", "ns")
    assert client.calls[0][3]["dry_run"] == "All"
    assert "dry_run" not in client.calls[1][3]


# --- lists page as kubectl does: limit=500 and the continue token -------------------------------


def _gone():
    """What the dynamic client raises for an expired continue token."""
    error = ApiException(status=410, reason="Gone")
    error.body = json.dumps({"message": "The provided continue parameter is too old"})
    return GoneError(error)


class _PagingClient:
    """Serves one collection of ``count`` objects a ``limit`` at a time; ``expire`` continued requests answer 410."""

    def __init__(self, count, expire=0):
        self.items = [{"metadata": {"name": "route-%04d" % i, "namespace": "ns-%d" % (i % 7)}} for i in range(count)]
        self.expire = expire
        self.calls = []

    def request(self, method, path, body=None, serialize=True, **params):
        self.calls.append((path, params.get("limit"), params.get("_continue")))
        if path.startswith("/apis/") and path.count("/") == 3:  # discovery of the group/version
            return _Response({"resources": [{"name": api.HTTP_ROUTE.plural}]})
        start = int(params["_continue"]) if params.get("_continue") else 0
        if params.get("_continue") and self.expire:
            self.expire -= 1
            raise _gone()
        end = start + params["limit"]
        metadata = {"continue": str(end)} if end < len(self.items) else {}
        return _Response({"items": self.items[start:end], "metadata": metadata})


def _list_calls(client):
    return [(limit, token) for path, limit, token in client.calls if path.endswith("/" + api.HTTP_ROUTE.plural)]


def test_a_list_reads_500_at_a_time_following_the_continue_token_until_it_ends():
    client = _PagingClient(1201)
    listed = Cluster(client).list(api.HTTP_ROUTE)
    assert [obj["metadata"]["name"] for obj in listed] == ["route-%04d" % i for i in range(1201)]
    assert _list_calls(client) == [(500, None), (500, "500"), (500, "1000")]
    # A list response's items carry no kind; the client adds it, as for one page.
    kinds = set((obj["kind"], obj["apiVersion"]) for obj in listed)
    assert kinds == set([(api.HTTP_ROUTE.kind, api.HTTP_ROUTE.api_version)])


def test_a_list_keeps_only_what_keep_accepts_from_every_page():
    client = _PagingClient(1000)
    listed = Cluster(client).list(api.HTTP_ROUTE, keep=lambda obj: obj["metadata"]["name"].endswith("99"))
    assert [obj["metadata"]["name"] for obj in listed] == ["route-%04d" % i for i in range(1000) if i % 100 == 99]


def test_an_expired_continue_token_restarts_the_list_once_without_duplicates():
    client = _PagingClient(1200, expire=1)
    listed = Cluster(client).list(api.HTTP_ROUTE)
    assert [obj["metadata"]["name"] for obj in listed] == ["route-%04d" % i for i in range(1200)]
    assert _list_calls(client) == [(500, None), (500, "500"), (500, None), (500, "500"), (500, "1000")]


def test_a_second_expired_continue_token_fails_naming_the_type():
    client = _PagingClient(1200, expire=2)
    with pytest.raises(ClusterError) as raised:
        Cluster(client).list(api.HTTP_ROUTE)
    assert raised.value.status == 410
    assert "HTTPRoute %s" % api.HTTP_ROUTE.api_version in str(raised.value) and "run again" in str(raised.value)
    assert len(_list_calls(client)) == 4
