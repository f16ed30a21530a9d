"""crd_cleanup on the sandbox: real API server, the real v0.3.0 and v1.0.0 CRDs, a real helm release.

The end of a migration is done by hand here (helm uninstall of the preview
release, llm-route off the alpha pool, InferenceObjectives from the v1.0.0 CRD),
so that what is proven is crd_cleanup's own behaviour.
"""

import os

import pytest
import yaml
from preview_stack import (
    ALPHA_CRDS, ALPHA_RELEASE, OBJECTIVE_CRD, create_objective, create_stray_model, crd_names,
    install_ga_crds, names, remove_preview_stack, set_route_backends,
)
from runner import run_task

pytestmark = pytest.mark.sandbox

MODULE = "inference_gateway.migration.crd_cleanup"
RESTORE = "inference_gateway.migration.migration_restore"
OBJECTIVES = "inferenceobjectives.inference.networking.x-k8s.io"
MODELS = "inferencemodels.inference.networking.x-k8s.io"


def blockers(result):
    return sorted((b["kind"], b["namespace"], b["name"]) for b in result["blockers"])


@pytest.fixture
def with_objectives(alpha_basic):
    """alpha-basic plus the v1.0.0 InferenceObjective CRD, two objectives and a stray InferenceModel in team-b."""
    kube = alpha_basic.kube()
    install_ga_crds(kube, with_pool=False)
    create_objective(kube, "food-review")
    create_objective(kube, "batch", namespace="team-c", priority=-1)
    create_stray_model(kube)
    return alpha_basic


def test_refuses_while_anything_uses_the_preview_api_then_deletes_exactly_the_alpha_crds(with_objectives):
    sandbox, kube = with_objectives, with_objectives.kube()
    objectives_before = names(kube, OBJECTIVES)
    assert len(objectives_before) == 2

    refused = run_task(MODULE, {}, sandbox.kubeconfig)
    assert refused.get("failed"), refused
    assert blockers(refused) == sorted([
        ("Deployment", "default", f"{ALPHA_RELEASE}-epp"),
        ("HTTPRoute", "default", "llm-route"),
        ("InferenceModel", "default", "base-model"),
        ("InferenceModel", "default", "food-review"),
        ("InferenceModel", "team-b", "stray"),
        ("InferencePool", "default", ALPHA_RELEASE),
    ])
    assert "team-b/stray" in refused["msg"]
    assert set(ALPHA_CRDS) <= crd_names(kube)

    remove_preview_stack(kube)
    set_route_backends(kube, [])
    refused = run_task(MODULE, {}, sandbox.kubeconfig)
    assert refused.get("failed"), refused
    assert blockers(refused) == [("InferenceModel", "team-b", "stray")]
    assert "team-b/stray" in refused["msg"] and "nothing was changed" in refused["msg"]
    assert set(ALPHA_CRDS) <= crd_names(kube)

    kube.kubectl("delete", MODELS, "stray", "-n", "team-b")
    crds_before = crd_names(kube)

    checked = run_task(MODULE, {}, sandbox.kubeconfig, check=True, diff=True)
    assert not checked.get("failed"), checked
    assert checked["changed"] is True and checked["deleted"] == list(ALPHA_CRDS)
    assert checked["diff"]["before"]["crds"] == sorted([*ALPHA_CRDS, OBJECTIVE_CRD])
    assert checked["diff"]["after"]["crds"] == [OBJECTIVE_CRD]
    assert crd_names(kube) == crds_before

    deleted = run_task(MODULE, {}, sandbox.kubeconfig)
    assert not deleted.get("failed"), deleted
    assert deleted["changed"] is True and deleted["deleted"] == list(ALPHA_CRDS) and deleted["blockers"] == []
    assert crd_names(kube) == crds_before - set(ALPHA_CRDS)
    assert OBJECTIVE_CRD in crd_names(kube)
    assert names(kube, OBJECTIVES) == objectives_before

    again = run_task(MODULE, {}, sandbox.kubeconfig)
    assert not again.get("failed"), again
    assert again["changed"] is False and again["deleted"] == [] and again["absent"] == list(ALPHA_CRDS)


def test_force_backs_up_leftovers_before_deleting_and_the_backup_restores_them(with_objectives, tmp_path):
    sandbox, kube = with_objectives, with_objectives.kube()

    protected = run_task(MODULE, {"crds": [OBJECTIVE_CRD]}, sandbox.kubeconfig)
    assert protected.get("failed") and OBJECTIVE_CRD in protected["msg"], protected
    no_backup = run_task(MODULE, {"force": True}, sandbox.kubeconfig)
    assert no_backup.get("failed") and "backup_dir" in no_backup["msg"], no_backup

    # force never overrides a route or an endpoint picker that still uses the preview API.
    still_serving = run_task(MODULE, {"force": True, "backup_dir": str(tmp_path)}, sandbox.kubeconfig)
    assert still_serving.get("failed"), still_serving
    assert blockers(still_serving) == [("Deployment", "default", f"{ALPHA_RELEASE}-epp"),
                                       ("HTTPRoute", "default", "llm-route")]
    assert os.listdir(tmp_path) == []
    assert {OBJECTIVE_CRD, *ALPHA_CRDS} <= crd_names(kube)

    kube.helm("uninstall", ALPHA_RELEASE, "--namespace", "default", "--wait", "--timeout=120s")
    set_route_backends(kube, [])
    models_before = names(kube, MODELS)
    assert models_before == [("default", "base-model"), ("default", "food-review"), ("team-b", "stray")]

    forced = run_task(MODULE, {"force": True, "backup_dir": str(tmp_path)}, sandbox.kubeconfig)
    assert not forced.get("failed"), forced
    assert forced["deleted"] == list(ALPHA_CRDS)
    assert sorted((b["namespace"], b["name"]) for b in forced["blockers"]) == models_before
    saved = [yaml.safe_load(open(path)) for path in forced["backup_files"] if not path.endswith("index.yaml")]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in saved) == sorted(
        [("CustomResourceDefinition", name) for name in ALPHA_CRDS]
        + [("InferenceModel", name) for namespace, name in models_before])
    assert not set(ALPHA_CRDS) & crd_names(kube)
    assert OBJECTIVE_CRD in crd_names(kube)

    backup_dir = os.path.dirname(next(p for p in forced["backup_files"] if p.endswith("index.yaml")))
    restored = run_task(RESTORE, {"path": backup_dir}, sandbox.kubeconfig)
    assert not restored.get("failed"), restored
    assert set(ALPHA_CRDS) <= crd_names(kube)
    assert names(kube, MODELS) == models_before
