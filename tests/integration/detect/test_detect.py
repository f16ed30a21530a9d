"""inferencepool_detect and playbooks/detect.yml on the sandbox, run through Ansible as an operator would.

The migration steps are driven by hand here (kubectl with manifests and patches),
not by the collection, so that detection is checked against states it did not
produce itself.
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest
from igw_sandbox import scenarios, upstream, versions
from igw_sandbox.kube import load_documents
from runner import REPO, run_playbook, run_task

pytestmark = pytest.mark.sandbox

# The collection's API facts, read from their one home (api.py imports nothing of ours).
_spec = importlib.util.spec_from_file_location("igw_api", REPO / "plugins/module_utils/api.py")
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)

MODULE = "inference_gateway.migration.inferencepool_detect"
NS = "default"
ALPHA_POOL = "vllm-llama3-8b-instruct-preview"
GA_POOL = "vllm-llama3-8b-instruct-ga"
GA_EPP = GA_POOL + "-epp"
MODEL_SERVER_APP = "vllm-llama3-8b-instruct"
ROUTE = "llm-route"
READY_TIMEOUT = 180
GA_CRD_FILES = [api.crd_file_name(rtype) + ".yaml" for rtype in (api.GA_POOL, api.INFERENCE_OBJECTIVE)]


def detect(sandbox, **args):
    result = run_task(MODULE, args, sandbox.kubeconfig)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    return result


def only(items):
    assert len(items) == 1, items
    return items[0]


# --- a v1 stack beside the alpha one, built by hand ----------------------------------------------


def v1_stack():
    """A v1 pool selecting alpha-basic's model servers, marked as migrated from the alpha pool, and its EPP."""
    epp_labels = {"app": GA_EPP}
    pool = {
        "apiVersion": api.GA_POOL.api_version, "kind": api.GA_POOL.kind,
        "metadata": {"name": GA_POOL, "namespace": NS,
                     "annotations": {api.MIGRATED_FROM_ANNOTATION: "%s/%s" % (NS, ALPHA_POOL)}},
        "spec": {"selector": {"matchLabels": {"app": MODEL_SERVER_APP}}, "targetPorts": [{"number": 8000}],
                 "endpointPickerRef": {"name": GA_EPP, "port": {"number": api.DEFAULT_EPP_PORT}}},
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": GA_EPP, "namespace": NS},
        "spec": {"selector": epp_labels, "ports": [{"name": "grpc-ext-proc", "port": api.DEFAULT_EPP_PORT}]},
    }
    epp_args = ["--pool-name", GA_POOL, "--pool-namespace", NS, "--pool-group", api.GA_GROUP]
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": GA_EPP, "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": epp_labels},
                 "template": {"metadata": {"labels": epp_labels},
                              "spec": {"containers": [{
                                  "name": "epp",
                                  "image": "registry.k8s.io/gateway-api-inference-extension/epp:%s" % versions.GIE_GA,
                                  "args": epp_args,
                                  "ports": [{"name": "grpc", "containerPort": api.DEFAULT_EPP_PORT}]}]}}},
    }
    return [pool, service, deployment], epp_args


def install_v1_crds(kube):
    bases = upstream.module_dir(upstream.INFERENCE_EXTENSION, versions.GIE_GA) / "config/crd/bases"
    kube.apply([doc for name in GA_CRD_FILES for doc in load_documents(bases / name)], server_side=True)


def set_backends(kube, *backends):
    """Replace the backendRefs of llm-route's only rule, as an operator editing the route would."""
    refs = []
    for group, name, weight in backends:
        ref = {"group": group, "kind": "InferencePool", "name": name}
        if weight is not None:
            ref["weight"] = weight
        refs.append(ref)
    kube.kubectl("patch", "httproute", ROUTE, "-n", NS, "--type=json",
                 "-p", json.dumps([{"op": "replace", "path": "/spec/rules/0/backendRefs", "value": refs}]))


# --- alpha-basic --------------------------------------------------------------------------------


def test_alpha_basic_reports_the_pool_its_models_route_release_and_ready_epp(alpha_basic):
    result = detect(alpha_basic)

    assert result["migration_needed"] is True
    pool = only(result["alpha_pools"])
    assert (pool["namespace"], pool["name"]) == (NS, ALPHA_POOL)
    assert pool["selector"] == {"app": MODEL_SERVER_APP} and pool["target_port"] == 8000
    # the v0.3.0 chart writes no port: the 9002 default is made explicit
    assert pool["extension_ref"] == {"group": "", "kind": "Service", "name": ALPHA_POOL + "-epp",
                                     "port": 9002, "failure_mode": "FailClose"}
    assert pool["helm_release"] == {"name": ALPHA_POOL, "namespace": NS}
    assert pool["epp"]["service_found"] is True and pool["epp"]["ready"] is True
    assert pool["epp"]["deployment"] == ALPHA_POOL + "-epp" and pool["epp"]["available_replicas"] == 1
    assert "-poolName" in pool["epp"]["args"]  # the v0.x picker's flag style
    models = dict((m["name"], m) for m in pool["models"])
    assert sorted(models) == ["base-model", "food-review"]
    assert (models["food-review"]["model_name"], models["food-review"]["criticality"]) == ("food-review", "Standard")
    assert models["food-review"]["target_models"] == [{"name": "food-review", "weight": 100}]
    assert models["food-review"]["rewrites"] is False
    assert (models["base-model"]["model_name"], models["base-model"]["criticality"]) == (
        "meta-llama/Llama-3.1-8B-Instruct", "Critical")
    route = only(pool["routes"])
    assert (route["namespace"], route["name"]) == (NS, ROUTE) and route["generation"] >= 1
    assert route["rules"] == [{"index": 0, "name": None, "alpha_weight": 1, "ga_weight": 0, "other_weight": 0,
                               "matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]
    assert (route["hostnames"], route["parents"]) == (
        [], [{"namespace": NS, "name": "inference-gateway", "section_name": None, "port": None}])
    assert (pool["phase"], pool["ga_counterpart"]) == ("not_started", None)

    assert result["v1_pools"] == [] and result["orphans"] == {"models": [], "routes": []}
    assert result["crds"][api.ALPHA_POOL.crd_name]["present"] is True
    assert result["crds"][api.ALPHA_POOL.crd_name]["stored_versions"] == ["v1alpha2"]
    assert result["crds"][api.ALPHA_POOL.crd_name]["established"] is True
    assert result["summary"]["routes_to_alpha"] == 1
    # food-review is Standard: its meaning changes at v1
    assert any("Standard criticality" in w and "default/food-review" in w for w in result["warnings"])


def test_fail_on_found_fails_naming_every_preview_object_and_check_mode_reads_the_same(alpha_basic):
    refused = run_task(MODULE, {"fail_on_found": True}, alpha_basic.kubeconfig)
    assert refused.get("failed") is True
    for name in ("%s/%s" % (NS, ALPHA_POOL), "default/food-review", "default/base-model"):
        assert name in refused["msg"]
    assert only(refused["alpha_pools"])["name"] == ALPHA_POOL  # the whole report comes with the failure

    checked = run_task(MODULE, {}, alpha_basic.kubeconfig, check=True)
    assert not checked.get("failed") and checked["changed"] is False
    assert only(checked["alpha_pools"])["name"] == ALPHA_POOL


def test_namespaces_limit_the_report(alpha_basic):
    elsewhere = detect(alpha_basic, namespaces=["kube-system"])
    assert elsewhere["migration_needed"] is False and elsewhere["alpha_pools"] == []
    here = detect(alpha_basic, namespaces=[NS])
    assert only(here["alpha_pools"])["name"] == ALPHA_POOL


def test_empty_sandbox_needs_no_migration(clean_sandbox):
    result = run_task(MODULE, {"fail_on_found": True}, clean_sandbox.kubeconfig)
    assert not result.get("failed"), result.get("msg")
    assert result["migration_needed"] is False
    assert result["alpha_pools"] == result["v1_pools"] == result["inference_models"] == []
    assert not any(crd["present"] for crd in result["crds"].values())
    assert result["summary"]["phases"] == dict.fromkeys(
        ["not_started", "side_by_side", "shifting", "shifted", "alpha_removed"], 0)


# --- a migration driven by hand, phase by phase ---------------------------------------------------


def phase_of(result):
    """(alpha pool phase or None when gone, v1 pool phase), and the alpha/ga weight totals."""
    alpha = result["alpha_pools"][0] if result["alpha_pools"] else None
    v1 = only(result["v1_pools"])
    return (alpha and alpha["phase"], v1["phase"]), alpha and alpha["weights"]


def test_hand_driven_migration_is_reported_at_every_phase(alpha_basic):
    kube = alpha_basic.kube()
    assert only(detect(alpha_basic)["alpha_pools"])["phase"] == "not_started"

    install_v1_crds(kube)
    manifests, epp_args = v1_stack()
    kube.apply(manifests)
    kube.kubectl("rollout", "status", "deployment/%s" % GA_EPP, "-n", NS, "--timeout=%ds" % READY_TIMEOUT)
    side_by_side = detect(alpha_basic)
    assert phase_of(side_by_side) == (("side_by_side", "side_by_side"), {"alpha": 1, "ga": 0})
    alpha = only(side_by_side["alpha_pools"])
    assert alpha["ga_counterpart"] == {"namespace": NS, "name": GA_POOL, "helm_release": None}
    v1 = only(side_by_side["v1_pools"])
    assert v1["selector"] == {"app": MODEL_SERVER_APP} and v1["target_ports"] == [8000]
    assert v1["migrated_from"] == "%s/%s" % (NS, ALPHA_POOL)
    assert v1["epp"] == {"service_found": True, "deployment": GA_EPP, "available_replicas": 1, "ready": True,
                         "image": "registry.k8s.io/gateway-api-inference-extension/epp:%s" % versions.GIE_GA,
                         "args": epp_args}
    assert side_by_side["crds"][api.GA_POOL.crd_name]["bundle_version"] == versions.GIE_GA
    assert side_by_side["crd_plan"]["install"] == []

    set_backends(kube, (api.ALPHA_GROUP, ALPHA_POOL, None), (api.GA_GROUP, GA_POOL, 0))
    assert phase_of(detect(alpha_basic)) == (("side_by_side", "side_by_side"), {"alpha": 1, "ga": 0})

    set_backends(kube, (api.ALPHA_GROUP, ALPHA_POOL, 50), (api.GA_GROUP, GA_POOL, 50))
    shifting = detect(alpha_basic)
    assert phase_of(shifting) == (("shifting", "shifting"), {"alpha": 50, "ga": 50})
    assert only(only(shifting["alpha_pools"])["routes"])["rules"] == [
        {"index": 0, "name": None, "alpha_weight": 50, "ga_weight": 50, "other_weight": 0,
         "matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]

    set_backends(kube, (api.ALPHA_GROUP, ALPHA_POOL, 0), (api.GA_GROUP, GA_POOL, 100))
    assert phase_of(detect(alpha_basic)) == (("shifted", "shifted"), {"alpha": 0, "ga": 100})

    kube.kubectl("delete", "%s/%s" % (api.ALPHA_POOL.crd_name, ALPHA_POOL), "-n", NS)
    removed = detect(alpha_basic)
    assert phase_of(removed) == ((None, "alpha_removed"), None)
    assert removed["summary"]["phases"]["alpha_removed"] == 1
    # what is left behind is reported: the models of the deleted pool and the route's weight-0 ref to it
    assert sorted(m["name"] for m in removed["orphans"]["models"]) == ["base-model", "food-review"]
    assert removed["orphans"]["routes"] == [{"namespace": NS, "name": ROUTE, "rule": 0, "backend": {
        "group": api.ALPHA_GROUP, "kind": "InferencePool", "namespace": NS, "name": ALPHA_POOL, "weight": 0}}]
    assert removed["migration_needed"] is True  # the InferenceModels are still preview objects


# --- the two GKE flavours --------------------------------------------------------------------------


def test_old_gke_plans_both_v1_crds(clean_sandbox):
    result = detect(clean_sandbox)
    assert result["is_gke"] is True and result["gke_ships_ga_pool_crd"] is False
    assert result["gke_version"] == versions.GKE_FLAVOURS["old"].lstrip("v")
    assert result["server_version"]["git_version"] == versions.GKE_FLAVOURS["old"]
    assert result["crd_plan"] == {"install": [api.GA_POOL.crd_name, api.INFERENCE_OBJECTIVE.crd_name],
                                  "keep_managed": []}


def test_new_gke_plans_only_the_objective_crd_and_keeps_the_platform_one(sandbox_factory):
    new = sandbox_factory("new", "new")
    new.reset()
    result = detect(new)
    assert result["is_gke"] is True and result["gke_ships_ga_pool_crd"] is True
    assert result["gke_version"] == versions.GKE_FLAVOURS["new"].lstrip("v")
    ga_crd = result["crds"][api.GA_POOL.crd_name]
    assert (ga_crd["present"], ga_crd["managed_by"], ga_crd["served_versions"]) == (True, "gke", ["v1"])
    assert result["crd_plan"] == {"install": [api.INFERENCE_OBJECTIVE.crd_name],
                                  "keep_managed": [api.GA_POOL.crd_name]}
    assert result["migration_needed"] is False


# --- the playbook -----------------------------------------------------------------------------------


def report_path(stdout):
    match = re.search(r"full result: (\S+\.json)", stdout)
    assert match, stdout
    return Path(match.group(1))


def test_detect_playbook_prints_the_table_names_orphans_and_writes_the_json_report_into_report_dir(
        alpha_basic, tmp_path):
    kube = alpha_basic.kube()
    kube.kubectl("create", "namespace", "team-b")
    kube.apply([{"apiVersion": api.INFERENCE_MODEL.api_version, "kind": api.INFERENCE_MODEL.kind,
                 "metadata": {"name": "stray", "namespace": "team-b"},
                 "spec": {"modelName": "stray-model", "poolRef": {"name": "gone"}}}])
    ran = run_playbook("playbooks/detect.yml", alpha_basic.kubeconfig, extra_vars={"report_dir": str(tmp_path)})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert re.search(r"API\s+POOL\s+PHASE\s+ALPHA/GA WEIGHT\s+PAIRED WITH\s+MODELS\s+EPP", ran.stdout), ran.stdout
    assert re.search(r"alpha\s+default/%s\s+not_started\s+1/0\s+-\s+2\s+ready" % ALPHA_POOL, ran.stdout), ran.stdout
    assert "migration needed: yes" in ran.stdout
    assert "orphan InferenceModel team-b/stray: its InferencePool team-b/gone (%s) does not exist" % api.ALPHA_GROUP \
        in ran.stdout, ran.stdout
    written = report_path(ran.stdout)
    assert written.parent == tmp_path
    report = json.loads(written.read_text())
    assert only(report["alpha_pools"])["name"] == ALPHA_POOL
    assert report["crd_plan"]["install"] == [api.GA_POOL.crd_name, api.INFERENCE_OBJECTIVE.crd_name]


def test_detect_playbook_defaults_to_reports_and_fails_on_found_when_asked(alpha_basic):
    ran = run_playbook("playbooks/detect.yml", alpha_basic.kubeconfig, extra_vars={"detect_fail_on_found": True})
    written = report_path(ran.stdout)
    try:
        assert ran.returncode != 0, ran.stdout
        assert "1 preview InferencePool(s) and 2" in ran.stdout
        assert written.parent == REPO / "reports"  # ./reports of the directory it ran from
        assert json.loads(written.read_text())["migration_needed"] is True
    finally:
        written.unlink(missing_ok=True)


def test_detect_playbook_reports_the_estate_exactly_as_the_scenario_recorded_it(clean_sandbox, tmp_path):
    clean_sandbox.seed("estate")
    record = scenarios.load("estate")["record"]
    kube = clean_sandbox.kube()
    addresses = set()
    for gateway in record["gateways"]:
        live = kube.get_json("gateway", gateway["name"], "-n", gateway["namespace"])
        assert live["spec"]["gatewayClassName"] == gateway["class"]
        addresses.add(live["status"]["addresses"][0]["value"])
    assert len(addresses) == len(record["gateways"]), "every Gateway has an address of its own"

    ran = run_playbook("playbooks/detect.yml", clean_sandbox.kubeconfig, extra_vars={"report_dir": str(tmp_path)})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads(report_path(ran.stdout).read_text())
    assert report["migration_needed"] is True
    found = dict(((pool["namespace"], pool["name"]), pool) for pool in report["alpha_pools"])
    assert sorted(found) == sorted((pool["namespace"], pool["name"]) for pool in record["pools"])
    for expected in record["pools"]:
        key = (expected["namespace"], expected["name"])
        pool = found[key]
        assert pool["phase"] == "not_started" and pool["selector"] == expected["selector"], key
        assert (pool["helm_release"] or {}).get("name") == expected["install"]["helm_release"], key
        epp = pool["epp"]
        assert (epp["deployment"], epp["ready"]) == (expected["epp_deployment"], True), (key, epp)
        assert epp["image"].rpartition(":")[2] == expected["install"]["epp_image_tag"], (key, epp["image"])
        assert [dict((field, model[field]) for field in ("name", "model_name", "criticality", "target_models"))
                for model in pool["models"]] == expected["models"], key
        assert dict(("%s/%s" % (route["namespace"], route["name"]), [rule["index"] for rule in route["rules"]])
                    for route in pool["routes"]) == expected["routes"], key
        assert re.search(r"alpha\s+%s/%s\s+not_started" % key, ran.stdout), ran.stdout
