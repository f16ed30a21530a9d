"""The loopback mirrors' own parts, without a sandbox: URL layout, bundle assembly, the chart
values edit that upstream's push does, the registry configuration and the HTTPS file server."""

import threading
import urllib.error
import urllib.request
import ssl

import pytest
import yaml

from igw_sandbox import charts, downloads, layout, mirrors, pki
from igw_sandbox.waits import SandboxError

POOL_CRD = """\
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: inferencepools.inference.networking.x-k8s.io
spec:
  group: inference.networking.x-k8s.io
"""
MODEL_CRD = POOL_CRD.replace("inferencepools", "inferencemodels")


def fake_module(tmp_path, kustomization, crds):
    bases = tmp_path / "config/crd/bases"
    bases.mkdir(parents=True)
    (tmp_path / "config/crd/kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    for name, text in crds.items():
        (bases / name).write_text(text)
    return tmp_path


def test_paths_are_githubs_raw_and_release_download_paths():
    repository = "/kubernetes-sigs/gateway-api-inference-extension"
    assert downloads.raw_path("v1.0.0", "config/crd/bases/x.yaml") == f"{repository}/raw/v1.0.0/config/crd/bases/x.yaml"
    assert downloads.release_asset_path("v0.3.0", "manifests.yaml") == \
        f"{repository}/releases/download/v0.3.0/manifests.yaml"


def test_the_bundle_is_the_kustomization_resources_in_kustomize_order_without_controller_gen_markers(tmp_path):
    module = fake_module(tmp_path, {"resources": ["bases/pools.yaml", "bases/models.yaml"], "patches": None},
                         {"pools.yaml": POOL_CRD, "models.yaml": MODEL_CRD})

    bundle = downloads.assemble_bundle(module).decode()

    # kustomize's legacy order sorts objects of one kind by name: models before pools.
    assert bundle == MODEL_CRD.removeprefix("---\n") + "---\n" + POOL_CRD.removeprefix("---\n")
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(bundle)] == [
        "inferencemodels.inference.networking.x-k8s.io", "inferencepools.inference.networking.x-k8s.io"]


def test_a_crd_that_the_kustomization_does_not_list_stays_out_of_the_bundle_but_is_served_as_a_file(tmp_path):
    module = fake_module(tmp_path, {"resources": ["bases/pools.yaml"]},
                         {"pools.yaml": POOL_CRD, "models.yaml": MODEL_CRD})

    files = downloads.release_files(module, "v9.0.0")

    bundle = files[downloads.release_asset_path("v9.0.0", "manifests.yaml")]
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(bundle)] == [
        "inferencepools.inference.networking.x-k8s.io"]
    assert files[downloads.raw_path("v9.0.0", "config/crd/bases/models.yaml")] == MODEL_CRD.encode()
    assert len(files) == 3


def test_a_kustomization_with_patches_is_refused_rather_than_assembled_wrongly(tmp_path):
    module = fake_module(tmp_path, {"resources": ["bases/pools.yaml"], "patches": [{"path": "p.yaml"}]},
                         {"pools.yaml": POOL_CRD})
    with pytest.raises(SandboxError, match="patches"):
        downloads.assemble_bundle(module)


VALUES = """\
inferenceExtension:
  replicas: 1
  image:
    name: epp
    # which build
    tag: main
    pullPolicy: Always
  sidecar:
    image:
      tag: keep-me
inferencePool:
  image:
    tag: keep-me-too
"""


def test_the_push_sets_only_the_epp_image_tag_and_keeps_comments():
    edited = charts.set_image_tag(VALUES, "v1.0.0")
    assert edited == VALUES.replace("    tag: main", "    tag: v1.0.0")


def test_values_without_an_epp_image_tag_are_refused():
    with pytest.raises(SandboxError, match="inferenceExtension.image.tag"):
        charts.set_image_tag("inferenceExtension:\n  image:\n    name: epp\n", "v1.0.0")


def test_the_registry_config_pins_loopback_tls_and_read_only_storage(tmp_path):
    config = charts.registry_config(storage=tmp_path, address="127.0.0.1", port=5000, cert="c.crt",
                                    key="c.key", read_only=True)
    assert config["http"] == {"addr": "127.0.0.1:5000", "tls": {"certificate": "c.crt", "key": "c.key"}}
    assert config["storage"]["filesystem"] == {"rootdirectory": str(tmp_path)}
    assert config["storage"]["maintenance"]["readonly"] == {"enabled": True}
    assert config["storage"]["maintenance"]["uploadpurging"] == {"enabled": False}
    writable = charts.registry_config(storage=tmp_path, address="127.0.0.1", port=5000, cert="c.crt",
                                      key="c.key", read_only=False)
    assert writable["storage"]["maintenance"]["readonly"] == {"enabled": False}


def test_the_registry_storage_is_keyed_by_registry_version_and_release_list():
    one, other = charts.storage_dir(("v0.3.0", "v1.0.0")), charts.storage_dir(("v0.3.0", "v1.0.0", "v1.1.0"))
    assert one != other
    assert one.name == "charts-v0.3.0-v1.0.0"


def test_the_env_names_the_mirrors_as_the_collection_variables_expect():
    sandbox = layout.Layout("unit")
    env = mirrors.env(sandbox, {"downloads": 4431, "registry": 4432})
    assert env == {
        "GIE_DOWNLOAD_URL": "https://127.0.0.1:4431/kubernetes-sigs/gateway-api-inference-extension",
        "GIE_CHART_REGISTRY": "oci://127.0.0.1:4432/gateway-api-inference-extension/charts",
        "SSL_CERT_FILE": str(sandbox.pki / "ca.crt"),
    }


def test_the_file_server_serves_its_files_over_tls_trusted_through_the_ca_and_404s_the_rest(tmp_path):
    ca = pki.CertificateAuthority(tmp_path)
    cert, key = ca.issue("mirrors", "mirrors", server=True)
    server = downloads.https_server("127.0.0.1", 0, cert, key, {"/a/b.yaml": b"kind: X\n"})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"https://127.0.0.1:{server.server_address[1]}"
    trusting = ssl.create_default_context(cafile=str(ca.cert_path))
    try:
        with urllib.request.urlopen(f"{base}/a/b.yaml", context=trusting, timeout=5) as response:
            assert (response.status, response.read()) == (200, b"kind: X\n")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/a/c.yaml", context=trusting, timeout=5)
        assert missing.value.code == 404
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(f"{base}/a/b.yaml", context=ssl.create_default_context(), timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_the_file_server_refuses_a_non_loopback_address(tmp_path):
    with pytest.raises(SandboxError, match="loopback"):
        downloads.https_server("0.0.0.0", 0, "c", "k", {})
