"""migration_backup and playbooks/rollback.yml on the sandbox.

The backup is taken of alpha-basic; then the simple path's end state is made by
hand, as the GKE guide describes it (v1.0.0 CRDs and a v1 release beside the
preview one, helm uninstall of the preview release, its InferenceModels
deleted, llm-route on the v1 pool, InferenceObjectives, the alpha CRDs deleted
by crd_cleanup with force after its own backup), and the gateway is seen
answering from the v1 pool. rollback.yml must then bring the preview stack
back, and the gateway must answer 200 from the alpha pool.
"""

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from preview_stack import (
    ALPHA_ANSWER, ALPHA_CRDS, ALPHA_GROUP, ALPHA_RELEASE, GA_ANSWER, OBJECTIVE_CRD, ROUTE, create_objective,
    crd_names, ga_pool_ref, install_ga_crds, install_ga_release, names, remove_preview_stack, set_route_backends,
    wait_for_answer,
)
from runner import run_playbook, run_task

pytestmark = pytest.mark.sandbox

BACKUP = "inference_gateway.migration.migration_backup"
RESTORE = "inference_gateway.migration.migration_restore"
CLEANUP = "inference_gateway.migration.crd_cleanup"
ROLLBACK = "playbooks/rollback.yml"
EPP = f"{ALPHA_RELEASE}-epp"
EXPECTED_COUNTS = {
    "CustomResourceDefinition": 2, "InferencePool": 1, "InferenceModel": 2, "HTTPRoute": 1, "Deployment": 1,
    "Service": 1, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "HealthCheckPolicy": 1,
    "GCPBackendPolicy": 1, "ClusterPodMonitoring": 1, "Secret": 1,
}


def finish_simple_path_by_hand(sandbox, cleanup_backups):
    kube = sandbox.kube()
    install_ga_crds(kube)
    install_ga_release(kube)
    remove_preview_stack(kube)
    set_route_backends(kube, [ga_pool_ref()])
    create_objective(kube, "food-review")
    cleaned = run_task(CLEANUP, {"force": True, "backup_dir": str(cleanup_backups)}, sandbox.kubeconfig)
    assert not cleaned.get("failed") and cleaned["deleted"] == list(ALPHA_CRDS), cleaned


def helm_releases(kube):
    return sorted((r["name"], r["status"]) for r in json.loads(kube.helm("list", "-n", "default", "-o", "json").stdout))


def test_backup_holds_the_preview_stack_stripped_with_an_index(alpha_basic, tmp_path):
    kube = alpha_basic.kube()
    checked = run_task(BACKUP, {"dest": str(tmp_path)}, alpha_basic.kubeconfig, check=True)
    assert not checked.get("failed") and checked["changed"] is True, checked
    assert checked["objects"] == EXPECTED_COUNTS and os.listdir(tmp_path) == []

    written = run_task(BACKUP, {"dest": str(tmp_path)}, alpha_basic.kubeconfig)
    assert not written.get("failed"), written
    assert written["objects"] == EXPECTED_COUNTS
    root = Path(written["path"])
    assert root.parent == tmp_path and os.listdir(tmp_path) == [root.name]

    index = yaml.safe_load(Path(written["index"]).read_text())
    assert index["what"] == "migration_backup" and index["where"] == str(root)
    assert index["cluster"]["server_version"] == json.loads(kube.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    assert index["collection"]["version"] == yaml.safe_load(Path("galaxy.yml").read_text())["version"]
    for entry in index["objects"]:
        saved = yaml.safe_load((root / entry["file"]).read_text())
        assert (saved["kind"], saved["metadata"]["name"]) == (entry["kind"], entry["name"])
        assert not {"uid", "resourceVersion", "managedFields", "creationTimestamp"} & set(saved["metadata"])
        assert "status" not in saved

    service = yaml.safe_load((root / "services" / f"default_{EPP}.yaml").read_text())
    assert "clusterIP" not in service["spec"] and "clusterIPs" not in service["spec"]
    epp = yaml.safe_load((root / "deployments.apps" / f"default_{EPP}.yaml").read_text())
    assert "-poolName" in epp["spec"]["template"]["spec"]["containers"][0]["args"]
    values = yaml.safe_load((root / "helm-releases" / f"default_{ALPHA_RELEASE}.v1.values.yaml").read_text())
    assert values["provider"] == {"name": "gke"}
    manifest = (root / "helm-releases" / f"default_{ALPHA_RELEASE}.v1.manifest.yaml").read_text()
    assert f"name: {EPP}" in manifest


def test_rollback_after_the_simple_path_brings_the_preview_stack_back(alpha_basic, tmp_path):
    sandbox, kube = alpha_basic, alpha_basic.kube()
    assert wait_for_answer(sandbox.gateway_url, ALPHA_ANSWER) == (200, ALPHA_ANSWER)
    backed_up = run_task(BACKUP, {"dest": str(tmp_path / "migration")}, sandbox.kubeconfig)
    assert not backed_up.get("failed"), backed_up

    finish_simple_path_by_hand(sandbox, tmp_path / "crd-cleanup")
    assert not set(ALPHA_CRDS) & crd_names(kube)
    assert wait_for_answer(sandbox.gateway_url, GA_ANSWER) == (200, GA_ANSWER)

    missing = run_playbook(ROLLBACK, sandbox.kubeconfig)
    assert missing.returncode != 0 and "Set rollback_backup_path" in missing.stdout, missing.stdout

    rolled_back = run_playbook(ROLLBACK, sandbox.kubeconfig, extra_vars={"rollback_backup_path": backed_up["path"]})
    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    # rollback.yml ends with the verify role's gate: every probe request through the restored stack answered 200.
    gate = re.search(r"Gate: passed, (\d+)/\1 requests to \S+ answered 2xx", rolled_back.stdout)
    assert gate, rolled_back.stdout[-3000:]
    assert f"InferencePool {ALPHA_RELEASE}" in rolled_back.stdout

    assert set(ALPHA_CRDS) | {OBJECTIVE_CRD} <= crd_names(kube)
    assert names(kube, f"inferencepools.{ALPHA_GROUP}") == [("default", ALPHA_RELEASE)]
    assert names(kube, f"inferencemodels.{ALPHA_GROUP}") == [("default", "base-model"), ("default", "food-review")]
    assert (ALPHA_RELEASE, "deployed") in helm_releases(kube)
    route = kube.get_json("httproute", ROUTE, "-n", "default")
    assert [(r["group"], r["name"]) for r in route["spec"]["rules"][0]["backendRefs"]] == [(ALPHA_GROUP, ALPHA_RELEASE)]
    assert wait_for_answer(sandbox.gateway_url, ALPHA_ANSWER) == (200, ALPHA_ANSWER)

    again = run_task(RESTORE, {"path": backed_up["path"]}, sandbox.kubeconfig)
    assert not again.get("failed"), again
    assert again["changed"] is False and again["created"] == [] and again["updated"] == []
