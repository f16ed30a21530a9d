"""Issue 7: after a completed simple-path migration, rollback.yml with its backup brings the
preview stack back and the gateway answers 200 through the preview pool."""

import pytest
from migration_harness import ALPHA_POOL, ALPHA_SERVED_BY, BASE_MODEL, api, assert_migrated, read_reports
from runner import run_task

pytestmark = pytest.mark.sandbox

PLAYBOOK_TIMEOUT = 900
PROBE = "inference_gateway.migration.endpoint_probe"


def test_rollback_with_the_simple_paths_backup_brings_the_preview_stack_back(
        view, start_playbook, report_dir, serving):
    migrated = start_playbook("playbooks/simple.yml", "simple")
    assert migrated.wait(PLAYBOOK_TIMEOUT) == 0, migrated.tail()
    assert_migrated(view)
    (report,) = read_reports(report_dir)
    assert report["backup_path"], report

    restored = start_playbook("playbooks/rollback.yml", "rollback", rollback_backup_path=report["backup_path"])
    assert restored.wait(PLAYBOOK_TIMEOUT) == 0, restored.tail()

    assert set(api.ALPHA_CRDS) <= view.crd_names()
    assert view.names(api.ALPHA_POOL) == [ALPHA_POOL]
    assert view.names(api.INFERENCE_MODEL) == ["base-model", "food-review"]
    assert view.helm_releases().get(ALPHA_POOL) == "deployed"
    assert any(ref.get("group") == api.ALPHA_GROUP and ref["name"] == ALPHA_POOL
               for rule in view.route()["spec"]["rules"] for ref in rule.get("backendRefs") or [])
    # rollback.yml waited for the route and probed the gateway itself; answers now come from the preview pool.
    probe = run_task(PROBE, {"url": serving.gateway_url + "/v1/completions", "model": BASE_MODEL, "requests": 20,
                             "group_by_header": "x-sandbox-pool"}, serving.kubeconfig)
    assert probe["ok"] == 20 and probe["by_header"] == {ALPHA_SERVED_BY: 20}, probe
