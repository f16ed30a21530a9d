"""The inference_crds module as a real run builds it: kubernetes.core's AnsibleK8SModule, the real
download path over HTTP (a loopback server standing in for the release host), and the cluster
replaced by the in-memory one. A release download once crashed here before any network access."""

import functools
import http.server
import json
import threading

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, cluster as cluster_module
from ansible_collections.inference_gateway.migration.plugins.modules import inference_crds
from memory_cluster import MemoryCluster

RELEASE = "v1.0.0"
OBJECTIVE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": api.INFERENCE_OBJECTIVE.crd_name},
    "spec": {"group": api.ALPHA_GROUP, "names": {"kind": "InferenceObjective", "plural": "inferenceobjectives"}},
}
MIRROR_PATH = "/kubernetes-sigs/gateway-api-inference-extension"


@pytest.fixture
def release_host(tmp_path):
    """A loopback HTTP server laid out as the GIE release downloads are."""
    crd_dir = tmp_path / MIRROR_PATH.lstrip("/") / "raw" / RELEASE / "config/crd/bases"
    crd_dir.mkdir(parents=True)
    (crd_dir / (api.crd_file_name(api.INFERENCE_OBJECTIVE) + ".yaml")).write_text(yaml.safe_dump(OBJECTIVE_CRD))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d%s" % (server.server_address[1], MIRROR_PATH)
    server.shutdown()
    server.server_close()


def _run(monkeypatch, capsys, memory, args):
    monkeypatch.setattr(cluster_module.Cluster, "from_module", classmethod(lambda cls, module: memory))
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            inference_crds.main()
    return json.loads(capsys.readouterr().out)


def test_a_crd_is_downloaded_through_the_module_a_real_run_builds(monkeypatch, capsys, release_host):
    memory = MemoryCluster()
    result = _run(monkeypatch, capsys, memory,
                  {"names": [api.INFERENCE_OBJECTIVE.crd_name], "release": RELEASE, "download_url": release_host})
    assert not result.get("failed"), result.get("msg")
    assert result["installed"] == [api.INFERENCE_OBJECTIVE.crd_name]
    url = result["source"][api.INFERENCE_OBJECTIVE.crd_name]
    assert url == "%s/raw/%s/config/crd/bases/%s.yaml" % (
        release_host, RELEASE, api.crd_file_name(api.INFERENCE_OBJECTIVE))
    assert memory.get(api.CRD, api.INFERENCE_OBJECTIVE.crd_name) is not None


def test_a_release_the_host_lacks_fails_naming_the_url_and_the_way_out(monkeypatch, capsys, release_host):
    memory = MemoryCluster()
    result = _run(monkeypatch, capsys, memory,
                  {"names": [api.INFERENCE_OBJECTIVE.crd_name], "release": "v1.3.0", "download_url": release_host})
    assert result["failed"]
    assert "HTTP 404" in result["msg"] and "/raw/v1.3.0/" in result["msg"]
    assert "migration_gie_download_url" in result["msg"] and "ga_stack_crd_source" in result["msg"]
    assert memory.get(api.CRD, api.INFERENCE_OBJECTIVE.crd_name) is None


def test_the_default_download_url_is_the_upstream_release_host():
    assert inference_crds.OPTIONS["download_url"]["default"] == api.GIE_DOWNLOAD_URL
    assert api.GIE_DOWNLOAD_URL == "https://github.com/kubernetes-sigs/gateway-api-inference-extension"
