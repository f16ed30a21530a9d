"""Issue 15 item 6: preview objects a run did not migrate are never left silently.

An InferenceModel in another namespace whose pool no longer exists keeps the preview
CRDs. simple.yml migrates alpha-basic's real pool, keeps the preview CRDs, and its
output and report name the stray model and say what to do about it.
"""

from pathlib import Path

import pytest
from migration_harness import ALPHA_POOL, GA_POOL, api, read_reports

pytestmark = pytest.mark.sandbox

PLAYBOOK_TIMEOUT = 900
STRAY_NAMESPACE = "team-b"
STRAY_MODEL = "stray"


def test_a_stray_inference_model_keeps_the_preview_crds_and_the_run_names_it(
        serving, view, start_playbook, report_dir):
    kube = serving.kube()
    kube.kubectl("create", "namespace", STRAY_NAMESPACE)
    kube.apply([{"apiVersion": api.INFERENCE_MODEL.api_version, "kind": api.INFERENCE_MODEL.kind,
                 "metadata": {"name": STRAY_MODEL, "namespace": STRAY_NAMESPACE},
                 "spec": {"modelName": "stray-model", "poolRef": {"name": "gone"}}}])

    run = start_playbook("playbooks/simple.yml", "simple")
    assert run.wait(PLAYBOOK_TIMEOUT) == 0, run.tail()

    # The real pool is migrated; the stray model, and so the preview CRDs, stay.
    assert view.names(api.GA_POOL) == [GA_POOL]
    assert view.names(api.ALPHA_POOL) == []
    assert view.v1_percent() == 100.0
    assert view.names(api.INFERENCE_MODEL, STRAY_NAMESPACE) == [STRAY_MODEL]
    assert set(api.ALPHA_CRDS) <= view.crd_names()

    stray = "InferenceModel %s/%s" % (STRAY_NAMESPACE, STRAY_MODEL)
    delete = "kubectl delete %s.%s %s -n %s" % (
        api.INFERENCE_MODEL.plural, api.INFERENCE_MODEL.group, STRAY_MODEL, STRAY_NAMESPACE)
    output = " ".join(run.output.split())  # the callback wraps long messages
    assert "The preview CRDs (%s) were kept" % ", ".join(api.ALPHA_CRDS) in output
    assert stray in output and delete in output

    (report,) = read_reports(report_dir)
    assert report["outcome"] == "succeeded"
    assert report["pools_migrated"] == ["default/" + ALPHA_POOL]
    (left,) = report["leftovers"]
    assert (left["kind"], left["namespace"], left["name"]) == (api.INFERENCE_MODEL.kind, STRAY_NAMESPACE, STRAY_MODEL)
    assert delete in left["fix"]
    assert not any(change["step"] == "cleanup" for change in report["changes"]), report["changes"]
    (markdown,) = Path(report_dir).glob("migration-localhost-*.md")
    text = markdown.read_text()
    assert "The preview CRDs were kept" in text and "| %s |" % stray in text
