"""The ga_stack role on the sandbox: the v1 stack comes up beside alpha-basic's preview stack.

In both GKE flavours (below 1.34.0-gke.1626000: the v1 InferencePool CRD is
installed; at or above: GKE's own CRD is kept) and both modes (the real GIE
v1.0.0 chart with real helm, or the collection's rendered manifests), through
ansible-playbook. The chart and CRDs are read from the Go module cache. Requests
go to the gateway all along: the preview stack must answer every one of them.
The v1 pool only receives traffic once the test adds a header-matched rule of
its own to llm-route (the zero-downtime role's job in real life).
"""

import http.client
import importlib.util
import json
import re

import pytest
from igw_sandbox import upstream, versions
from igw_sandbox.kube import load_documents
from igw_sandbox.loadgen import LoadGenerator
from igw_sandbox.modelserver import POOL_HEADER
from igw_sandbox.waits import wait_until
from runner import REPO, run_playbook

pytestmark = pytest.mark.sandbox

# The collection's API facts, read from their one home (api.py imports nothing of ours).
_spec = importlib.util.spec_from_file_location("igw_api", REPO / "plugins/module_utils/api.py")
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)

PLAYBOOK = "tests/integration/ga_stack/ga_stack.yml"
NS = "default"
ALPHA_POOL = "vllm-llama3-8b-instruct-preview"
GA_POOL = "vllm-llama3-8b-instruct-ga"
GA_EPP = GA_POOL + "-epp"
ROUTE = "llm-route"
TEST_HEADER = "x-test-pool"
ALPHA_SERVED_BY = "%s/%s/%s" % (api.ALPHA_GROUP, NS, ALPHA_POOL)
GA_SERVED_BY = "%s/%s/%s" % (api.GA_GROUP, NS, GA_POOL)
ALPHA_POOLS = api.ALPHA_POOL.crd_name
GA_POOLS = api.GA_POOL.crd_name
SETTLE_SECONDS = 60
# Background requests while the role runs: bounded in rate, count and time.
LOAD_RATE = 4
LOAD_MAX_REQUESTS = 4000
LOAD_MAX_SECONDS = 900
MIRRORS, LOCAL = "mirrors", "local"
RECAP = re.compile(r"^localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", re.MULTILINE)


@pytest.fixture(scope="module")
def gie_ga():
    """The GIE v1.0.0 module in the Go module cache (go mod download -json)."""
    return upstream.module_dir(upstream.INFERENCE_EXTENSION, versions.GIE_GA)


def seeded(request, flavour):
    if flavour == "old":
        return request.getfixturevalue("alpha_basic")
    sandbox = request.getfixturevalue("sandbox_factory")("new", "new")
    sandbox.reset()
    sandbox.seed("alpha-basic")
    return sandbox


def run_role(sandbox, mode, gie_ga, result_path, check=False, sources=MIRRORS, **role_vars):
    """Run the role with the chart and CRDs from the sandbox's mirrors of the upstream hosts (the defaults
    with only the host swapped) or, with sources=LOCAL, from the release's files on disk."""
    extra_vars = {
        "ga_stack_mode": mode,
        "ga_stack_helm_binary": sandbox.helm,
        "ga_stack_test_result_path": str(result_path),
    }
    if sources == LOCAL:
        extra_vars.update(ga_stack_chart_ref=str(gie_ga / "config/charts/inferencepool"),
                          ga_stack_crd_source=str(gie_ga / "config/crd/bases"))
    else:
        extra_vars.update(ga_stack_chart_registry=sandbox.env["GIE_CHART_REGISTRY"],
                          ga_stack_download_url=sandbox.env["GIE_DOWNLOAD_URL"])
    extra_vars.update(role_vars)
    completed = run_playbook(PLAYBOOK, sandbox.kubeconfig, extra_vars=extra_vars, check=check, env=sandbox.env)
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-3000:]
    changed, failed = (int(n) for n in RECAP.search(completed.stdout).groups())
    assert failed == 0
    return changed, json.loads(result_path.read_text()), completed.stdout


def post(sandbox, headers=None):
    connection = http.client.HTTPConnection(sandbox.address, 80, timeout=10)
    try:
        body = json.dumps({"model": "food-review", "prompt": "hi", "max_tokens": 10, "temperature": 0})
        connection.request("POST", "/v1/completions", body=body,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader(POOL_HEADER)
    finally:
        connection.close()


def get(kube, *args):
    result = kube.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def pods_selected(kube, selector):
    labels = ",".join("%s=%s" % item for item in sorted(selector.items()))
    return sorted(p["metadata"]["name"] for p in get(kube, "pods", "-n", NS, "-l", labels)["items"])


def crd_labels(kube, name):
    return (get(kube, "crd", name) or {}).get("metadata", {}).get("labels") or {}


def ga_objects_present(kube):
    return {
        "v1 pool": get(kube, GA_POOLS, GA_POOL, "-n", NS) is not None,
        "epp": get(kube, "deployment", GA_EPP, "-n", NS) is not None,
        "ga release": kube.helm("status", GA_POOL, "-n", NS, check=False).returncode == 0,
    }


def add_ga_test_rule(kube):
    """A second rule, matched by a header of the test's own, sending everything to the v1 pool."""
    rule = {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                         "headers": [{"name": TEST_HEADER, "value": "ga"}]}],
            "backendRefs": [{"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "name": GA_POOL, "weight": 100}]}
    patch = [{"op": "add", "path": "/spec/rules/-", "value": rule}]
    kube.kubectl("patch", "httproute", ROUTE, "-n", NS, "--type=json", "-p", json.dumps(patch))


def pool_accepted(kube):
    parents = (get(kube, GA_POOLS, GA_POOL, "-n", NS).get("status") or {}).get("parents") or []
    return any(c["type"] == "Accepted" and c["status"] == "True" for p in parents for c in p.get("conditions", []))


# The local chart directory and CRD files (ga_stack_chart_ref, ga_stack_crd_source) once, the mirrors elsewhere.
@pytest.mark.parametrize("flavour, mode, sources", [("old", "helm", LOCAL), ("new", "helm", MIRRORS),
                                                    ("old", "manifests", MIRRORS), ("new", "manifests", MIRRORS)])
def test_v1_stack_comes_up_beside_the_preview_stack(request, flavour, mode, sources, gie_ga, tmp_path):
    sandbox = seeded(request, flavour)
    kube = sandbox.kube()
    wait_until("the preview stack to answer", lambda: post(sandbox) == (200, ALPHA_SERVED_BY), SETTLE_SECONDS,
               interval=0.5)
    alpha_before = get(kube, ALPHA_POOLS, ALPHA_POOL, "-n", NS)
    managed_ga_crd_before = get(kube, "crd", GA_POOLS) if flavour == "new" else None

    load = LoadGenerator(url=sandbox.gateway_url + "/v1/completions", rate=LOAD_RATE, duration=LOAD_MAX_SECONDS,
                         max_requests=LOAD_MAX_REQUESTS, model="food-review", summary_path=tmp_path / "load.json")
    load.start()
    try:
        # Check mode previews the run and builds nothing.
        run_role(sandbox, mode, gie_ga, tmp_path / "check.json", check=True, sources=sources)
        assert ga_objects_present(kube) == {"v1 pool": False, "epp": False, "ga release": False}
        assert get(kube, "crd", api.INFERENCE_OBJECTIVE.crd_name) is None

        changed, first, unused_output = run_role(sandbox, mode, gie_ga, tmp_path / "first.json", sources=sources)
        assert changed > 0
        again, second, output = run_role(sandbox, mode, gie_ga, tmp_path / "second.json", sources=sources)
        assert again == 0, output[-6000:]
    finally:
        traffic = load.stop()

    # The preview stack answered every request while the v1 stack was built.
    assert traffic["sent"] >= 20
    assert traffic["failed"] == 0, traffic["failure_windows"]
    assert traffic["per_pool"] == {ALPHA_SERVED_BY: traffic["sent"]}

    # Where the CRD the cluster lacked came from: the release download (its mirror) or the local files.
    objective_source = first["crd_sources"][api.INFERENCE_OBJECTIVE.crd_name]
    if sources == MIRRORS:
        assert objective_source == "%s/raw/%s/config/crd/bases/%s.yaml" % (
            sandbox.env["GIE_DOWNLOAD_URL"], versions.GIE_GA, api.crd_file_name(api.INFERENCE_OBJECTIVE))
    else:
        assert objective_source.startswith(str(gie_ga / "config/crd/bases"))
    if sources == MIRRORS and mode == "helm":
        # helm pulled the published chart over OCI: its version is the release tag, as on registry.k8s.io.
        metadata = json.loads(kube.helm("get", "metadata", GA_POOL, "-n", NS, "-o", "json").stdout)
        assert (metadata["chart"], metadata["version"]) == ("inferencepool", versions.GIE_GA)

    [created] = first["created"]
    assert created == second["created"][0]
    assert created == {"alpha": "%s/%s" % (NS, ALPHA_POOL), "v1": "%s/%s" % (NS, GA_POOL), "release": GA_POOL,
                       "mode": mode, "epp_deployment": GA_EPP, "epp": {"namespace": NS, "name": GA_EPP},
                       "objectives": ["base-model", "food-review"],
                       "model_rewrites": [],
                       "warnings": []}

    # CRDs: installed where missing, the GKE-managed one left exactly as it was.
    assert crd_labels(kube, api.INFERENCE_OBJECTIVE.crd_name)[api.MIGRATION_LABEL] == api.MIGRATION_LABEL_VALUE
    if flavour == "new":
        managed = get(kube, "crd", GA_POOLS)
        assert managed["metadata"]["resourceVersion"] == managed_ga_crd_before["metadata"]["resourceVersion"]
        assert api.MIGRATION_LABEL not in crd_labels(kube, GA_POOLS)
    else:
        assert crd_labels(kube, GA_POOLS)[api.MIGRATION_LABEL] == api.MIGRATION_LABEL_VALUE

    # The v1 pool selects the same pods as the preview pool, through its own v1.0 endpoint picker.
    alpha_pool = get(kube, ALPHA_POOLS, ALPHA_POOL, "-n", NS)
    v1_pool = get(kube, GA_POOLS, GA_POOL, "-n", NS)
    assert v1_pool["spec"]["selector"]["matchLabels"] == alpha_pool["spec"]["selector"]
    assert pods_selected(kube, v1_pool["spec"]["selector"]["matchLabels"]) == \
        pods_selected(kube, alpha_pool["spec"]["selector"])
    assert len(pods_selected(kube, alpha_pool["spec"]["selector"])) == 3
    assert v1_pool["spec"]["targetPorts"] == [{"number": alpha_pool["spec"]["targetPortNumber"]}]
    assert v1_pool["spec"]["endpointPickerRef"]["name"] == GA_EPP
    assert v1_pool["spec"]["endpointPickerRef"]["port"] == {"number": api.DEFAULT_EPP_PORT}
    assert v1_pool["spec"]["endpointPickerRef"]["failureMode"] == api.DEFAULT_FAILURE_MODE
    assert v1_pool["metadata"]["annotations"][api.MIGRATED_FROM_ANNOTATION] == "%s/%s" % (NS, ALPHA_POOL)
    assert v1_pool["metadata"]["labels"][api.MIGRATION_LABEL] == api.MIGRATION_LABEL_VALUE
    epp = get(kube, "deployment", GA_EPP, "-n", NS)
    assert epp["status"]["availableReplicas"] >= 1
    args = epp["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--pool-name") + 1] == GA_POOL
    if mode == "manifests":
        assert args[args.index("--pool-group") + 1] == api.GA_GROUP
        assert kube.helm("status", GA_POOL, "-n", NS, check=False).returncode != 0
    else:
        assert json.loads(kube.helm("status", GA_POOL, "-n", NS, "-o", "json").stdout)["version"] == 1

    # One objective per model, for the v1 pool, priority from criticality.
    objectives = dict((o["metadata"]["name"], o["spec"]) for o in
                      get(kube, api.INFERENCE_OBJECTIVE.crd_name, "-n", NS)["items"])
    pool_ref = {"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "name": GA_POOL}
    assert objectives == {"food-review": {"poolRef": pool_ref, "priority": 1},
                          "base-model": {"poolRef": pool_ref, "priority": 2}}

    # The preview stack is untouched.
    assert alpha_pool["spec"] == alpha_before["spec"]
    assert json.loads(kube.helm("status", ALPHA_POOL, "-n", NS, "-o", "json").stdout)["version"] == 1

    # Routed to, the v1 pool is accepted by the gateway and answers; the preview rule still answers too.
    add_ga_test_rule(kube)
    wait_until("the gateway to accept v1 pool %s" % GA_POOL, lambda: pool_accepted(kube), SETTLE_SECONDS,
               interval=0.5)
    wait_until("a request with %s: ga to be served by the v1 pool" % TEST_HEADER,
               lambda: post(sandbox, {TEST_HEADER: "ga"}) == (200, GA_SERVED_BY), SETTLE_SECONDS, interval=0.5)
    assert [post(sandbox, {TEST_HEADER: "ga"}) for unused in range(20)] == [(200, GA_SERVED_BY)] * 20
    assert [post(sandbox) for unused in range(20)] == [(200, ALPHA_SERVED_BY)] * 20


SPLIT_MODEL = {
    "apiVersion": api.INFERENCE_MODEL.api_version, "kind": api.INFERENCE_MODEL.kind,
    "metadata": {"name": "food-review-split", "namespace": NS},
    "spec": {"modelName": "food-review-split", "criticality": "Sheddable", "poolRef": {"name": ALPHA_POOL},
             "targetModels": [{"name": "food-review", "weight": 90}, {"name": "food-review-canary", "weight": 10}]},
}


# v1.2.0's CRD installed beforehand: its spelling (split) wins whatever the target. None installed and target v1.3.0:
# the role installs the release's CRD (from the download mirror) before the EPP starts, and writes `targets`.
@pytest.mark.parametrize("installed_crd_release, target_release, field",
                         [("v1.2.0", "v1.0.0", "split"), (None, "v1.3.0", "targets")])
def test_model_rewrites_take_the_installed_crds_spelling(alpha_basic, gie_ga, tmp_path, installed_crd_release,
                                                         target_release, field):
    kube = alpha_basic.kube()
    if installed_crd_release:
        bases = upstream.module_dir(upstream.INFERENCE_EXTENSION, installed_crd_release) / "config/crd/bases"
        kube.apply(load_documents(bases / ("%s.yaml" % api.crd_file_name(api.INFERENCE_MODEL_REWRITE))),
                   server_side=True)
    kube.apply([SPLIT_MODEL])
    release = {"ga_stack_release": target_release, "ga_stack_chart_version": target_release}

    changed, first, unused_output = run_role(alpha_basic, "helm", gie_ga, tmp_path / "first.json",
                                             ga_stack_create_model_rewrites=True, **release)
    assert changed > 0
    again, unused_second, output = run_role(alpha_basic, "helm", gie_ga, tmp_path / "second.json",
                                            ga_stack_create_model_rewrites=True, **release)
    assert again == 0, output[-6000:]

    [created] = first["created"]
    assert created["model_rewrites"] == ["food-review-split"]
    assert any("food-review-split" in w and api.MODEL_NAME_REWRITE_HEADER in w for w in created["warnings"])
    # The v1.0.0 endpoint picker of the chart does not read rewrites yet; the role says so. The v1.3.0 one would,
    # but starts no reconciler for them (an upstream bug); the role says that instead.
    reads = "starts no InferenceObjective or InferenceModelRewrite reconciler" if target_release == "v1.3.0" \
        else "does not read them"
    assert any(reads in w for w in created["warnings"]), created["warnings"]
    if not installed_crd_release:
        assert api.INFERENCE_MODEL_REWRITE.crd_name in first["crd_sources"], first["crd_sources"]

    rewrite = get(kube, api.INFERENCE_MODEL_REWRITE.crd_name, "food-review-split", "-n", NS)
    assert rewrite["spec"] == {
        "poolRef": {"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "name": GA_POOL},
        "rules": [{"matches": [{"model": {"type": "Exact", "value": "food-review-split"}}],
                   field: [{"modelRewrite": "food-review", "weight": 90},
                           {"modelRewrite": "food-review-canary", "weight": 10}]}],
    }
    objective = get(kube, api.INFERENCE_OBJECTIVE.crd_name, "food-review-split", "-n", NS)
    assert objective["spec"]["priority"] == -1
