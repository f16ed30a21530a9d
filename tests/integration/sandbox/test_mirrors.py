"""The loopback mirrors serve what the collection's defaults download, checked the way the
collection will reach them: helm's OCI pull and ansible's open_url, trusting the sandbox CA
through SSL_CERT_FILE alone, against the content of each release's Go module."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from igw_sandbox import charts, downloads, upstream, versions

pytestmark = pytest.mark.sandbox

RELEASES = versions.GIE_RELEASES
V1_POOL_CRD = "inferencepools.inference.networking.k8s.io"

# Fetches each URL given as an argument with ansible's open_url and prints {url: content}.
OPEN_URL = """
import json, sys
from ansible.module_utils.urls import open_url
print(json.dumps({url: open_url(url, timeout=10).read().decode() for url in sys.argv[1:]}))
"""


def module_dir(tag):
    return upstream.module_dir(upstream.INFERENCE_EXTENSION, tag)


def trusting_env(sandbox):
    """The process environment plus the sandbox's env file: the only trust is its SSL_CERT_FILE."""
    return {**os.environ, **sandbox.env}


def distrusting_env(sandbox):
    env = trusting_env(sandbox)
    env.pop("SSL_CERT_FILE")
    return env


def open_url(env, *urls):
    result = subprocess.run([sys.executable, "-c", OPEN_URL, *urls], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    return result.returncode, result.stdout, result.stderr


def helm(sandbox, *args, env=None, check=True):
    result = subprocess.run([sandbox.helm, *args], env=env or trusting_env(sandbox), capture_output=True, text=True,
                            timeout=180, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def chart_ref(sandbox):
    return f"{sandbox.env['GIE_CHART_REGISTRY']}/{charts.CHART}"


def test_the_env_file_names_both_mirrors_on_loopback_and_the_ca(sandbox):
    env = sandbox.env
    ports = sandbox.info()["ports"]
    assert env["GIE_DOWNLOAD_URL"] == \
        f"https://127.0.0.1:{ports['downloads']}/kubernetes-sigs/gateway-api-inference-extension"
    assert env["GIE_CHART_REGISTRY"] == f"oci://127.0.0.1:{ports['registry']}/gateway-api-inference-extension/charts"
    assert open(env["SSL_CERT_FILE"]).read().startswith("-----BEGIN CERTIFICATE-----")


def test_open_url_downloads_every_crd_file_and_bundle_of_every_release_as_the_module_has_them(sandbox):
    base = sandbox.env["GIE_DOWNLOAD_URL"]
    expected = {}
    for tag in RELEASES:
        for crd in downloads.crd_files(module_dir(tag)):
            expected[f"{base}/raw/{tag}/config/crd/bases/{crd.name}"] = crd.read_text()
    bundles = {tag: f"{base}/releases/download/{tag}/manifests.yaml" for tag in RELEASES}

    returncode, stdout, stderr = open_url(trusting_env(sandbox), *expected, *bundles.values())

    assert returncode == 0, stderr
    fetched = json.loads(stdout)
    assert {url: fetched[url] for url in expected} == expected
    for tag, url in bundles.items():
        kustomization = yaml.safe_load((module_dir(tag) / "config/crd/kustomization.yaml").read_text())
        listed = [yaml.safe_load((module_dir(tag) / "config/crd" / path).read_text())
                  for path in kustomization["resources"]]
        served = list(yaml.safe_load_all(fetched[url]))
        assert sorted(served, key=lambda crd: crd["metadata"]["name"]) == \
            sorted(listed, key=lambda crd: crd["metadata"]["name"]), tag
        assert [crd["metadata"]["name"] for crd in served] == sorted(crd["metadata"]["name"] for crd in listed)


def test_open_url_refuses_the_download_mirror_without_the_sandbox_ca(sandbox):
    url = f"{sandbox.env['GIE_DOWNLOAD_URL']}/releases/download/{RELEASES[0]}/manifests.yaml"
    returncode, _stdout, stderr = open_url(distrusting_env(sandbox), url)
    assert returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in stderr


def test_the_download_mirror_answers_404_for_a_release_it_does_not_list(sandbox):
    url = f"{sandbox.env['GIE_DOWNLOAD_URL']}/releases/download/v0.0.1/manifests.yaml"
    returncode, _stdout, stderr = open_url(trusting_env(sandbox), url)
    assert returncode != 0 and "404" in stderr


@pytest.mark.parametrize("tag", RELEASES)
def test_helm_pulls_each_release_chart_over_oci_as_upstream_packaged_it(sandbox, tag, tmp_path):
    helm(sandbox, "pull", chart_ref(sandbox), "--version", tag, "--destination", str(tmp_path))

    archive = tmp_path / f"{charts.CHART}-{tag}.tgz"
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "pulled", filter="data")
    pulled = tmp_path / "pulled" / charts.CHART
    source = module_dir(tag) / charts.CHARTS_DIRECTORY / charts.CHART
    source_files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    pulled_files = sorted(p.relative_to(pulled) for p in pulled.rglob("*") if p.is_file())
    # `helm dependency update` (v1.4+) adds Chart.lock, and helm package puts each file:// dependency (../epplib)
    # in the archive under charts/<its name>/, file for file.
    dependencies = yaml.safe_load((source / "Chart.yaml").read_text()).get("dependencies") or []
    added = [Path("Chart.lock")] if dependencies else []
    for dependency in dependencies:
        dependency_source = (source / dependency["repository"][len("file://"):]).resolve()
        for path in sorted(p for p in dependency_source.rglob("*") if p.is_file()):
            relative = Path("charts") / dependency["name"] / path.relative_to(dependency_source)
            added.append(relative)
            if path.name == "Chart.yaml":  # helm writes a packaged chart's Chart.yaml anew
                assert yaml.safe_load((pulled / relative).read_text()) == yaml.safe_load(path.read_text())
            else:
                assert (pulled / relative).read_bytes() == path.read_bytes(), relative
    assert pulled_files == sorted(source_files + added)
    for relative in source_files:
        if relative.name in ("Chart.yaml", "values.yaml"):
            continue
        assert (pulled / relative).read_bytes() == (source / relative).read_bytes(), relative
    chart = yaml.safe_load((pulled / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (tag, tag)
    assert {k: v for k, v in chart.items() if k not in ("version", "appVersion")} == \
        {k: v for k, v in yaml.safe_load((source / "Chart.yaml").read_text()).items()
         if k not in ("version", "appVersion")}
    values = yaml.safe_load((pulled / "values.yaml").read_text())
    source_values = yaml.safe_load((source / "values.yaml").read_text())
    source_values["inferenceExtension"]["image"]["tag"] = tag
    assert values == source_values


def test_helm_refuses_the_registry_without_the_sandbox_ca(sandbox, tmp_path):
    refused = helm(sandbox, "pull", chart_ref(sandbox), "--version", RELEASES[-1], "--destination", str(tmp_path),
                   env=distrusting_env(sandbox), check=False)
    assert refused.returncode != 0 and "certificate" in refused.stderr


def test_helm_installs_the_v1_chart_from_the_registry_after_the_bundle_from_the_download_mirror(
        clean_sandbox, tmp_path):
    sandbox = clean_sandbox
    url = f"{sandbox.env['GIE_DOWNLOAD_URL']}/releases/download/{versions.GIE_GA}/manifests.yaml"
    returncode, stdout, stderr = open_url(trusting_env(sandbox), url)
    assert returncode == 0, stderr
    bundle = tmp_path / "manifests.yaml"
    bundle.write_text(json.loads(stdout)[url])
    subprocess.run(["kubectl", "apply", "--server-side", "-f", str(bundle)], env=trusting_env(sandbox),
                   check=True, capture_output=True, timeout=120)

    helm(sandbox, "install", "mirror-pool", chart_ref(sandbox), "--version", versions.GIE_GA,
         "--set", "inferencePool.modelServers.matchLabels.app=mirror-model", "--set", "provider.name=gke")

    releases = json.loads(helm(sandbox, "list", "-o", "json").stdout)
    assert [(r["name"], r["chart"], r["status"]) for r in releases] == \
        [("mirror-pool", f"{charts.CHART}-{versions.GIE_GA}", "deployed")]
    pool = json.loads(subprocess.run(["kubectl", "get", f"{V1_POOL_CRD}/mirror-pool", "-o", "json"],
                                     env=trusting_env(sandbox), check=True, capture_output=True, text=True,
                                     timeout=60).stdout)
    assert pool["spec"]["selector"]["matchLabels"] == {"app": "mirror-model"}
