"""inference_crds on the sandbox, through Ansible: real API server, real GIE CRDs from the Go module cache."""

import importlib.util
import json

import pytest
from igw_sandbox import upstream, versions
from runner import REPO, run_task

pytestmark = pytest.mark.sandbox

_spec = importlib.util.spec_from_file_location("igw_api", REPO / "plugins/module_utils/api.py")
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)

MODULE = "inference_gateway.migration.inference_crds"
OBJECTIVES = api.INFERENCE_OBJECTIVE.crd_name
GA_POOLS = api.GA_POOL.crd_name


@pytest.fixture(scope="module")
def bases():
    return upstream.module_dir(upstream.INFERENCE_EXTENSION, versions.GIE_GA) / "config/crd/bases"


def crd(sandbox, name):
    result = sandbox.kube().kubectl("get", "crd", name, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_installs_missing_crds_once_and_keeps_them(clean_sandbox, bases):
    args = {"names": [GA_POOLS, OBJECTIVES], "src": str(bases)}

    preview = run_task(MODULE, args, clean_sandbox.kubeconfig, check=True, diff=True)
    assert not preview.get("failed"), preview.get("msg")
    assert preview["changed"] and sorted(preview["installed"]) == sorted([GA_POOLS, OBJECTIVES])
    assert preview["diff"] == {"before": {"crds": []}, "after": {"crds": sorted([GA_POOLS, OBJECTIVES])}}
    assert crd(clean_sandbox, GA_POOLS) is None and crd(clean_sandbox, OBJECTIVES) is None

    first = run_task(MODULE, args, clean_sandbox.kubeconfig)
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] and first["kept"] == []
    assert first["source"][OBJECTIVES] == str(bases / ("%s.yaml" % api.crd_file_name(api.INFERENCE_OBJECTIVE)))
    for name in (GA_POOLS, OBJECTIVES):
        installed = crd(clean_sandbox, name)
        assert installed["metadata"]["labels"][api.MIGRATION_LABEL] == api.MIGRATION_LABEL_VALUE
        assert any(c["type"] == "Established" and c["status"] == "True" for c in installed["status"]["conditions"])
    versions_before = dict((name, crd(clean_sandbox, name)["metadata"]["resourceVersion"])
                           for name in (GA_POOLS, OBJECTIVES))

    second = run_task(MODULE, args, clean_sandbox.kubeconfig)
    assert not second["changed"] and second["installed"] == [] and sorted(second["kept"]) == sorted(args["names"])
    assert versions_before == dict((name, crd(clean_sandbox, name)["metadata"]["resourceVersion"])
                                   for name in (GA_POOLS, OBJECTIVES))


def test_refuses_the_alpha_crds_and_a_source_without_the_crd(clean_sandbox, bases):
    refused = run_task(MODULE, {"names": [OBJECTIVES, api.ALPHA_POOL.crd_name], "src": str(bases)},
                       clean_sandbox.kubeconfig)
    assert refused.get("failed") and "Refusing to install %s" % api.ALPHA_POOL.crd_name in refused["msg"]

    missing = run_task(MODULE, {"names": [OBJECTIVES, api.INFERENCE_MODEL_REWRITE.crd_name], "src": str(bases)},
                       clean_sandbox.kubeconfig)
    assert missing.get("failed") and api.INFERENCE_MODEL_REWRITE.crd_name in missing["msg"]
    # Nothing was written before the refusals.
    assert crd(clean_sandbox, OBJECTIVES) is None
