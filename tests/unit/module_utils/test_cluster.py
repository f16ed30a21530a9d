import json

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import Cluster


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
