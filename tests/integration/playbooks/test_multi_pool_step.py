"""A traffic step with several pools pays one programming wait, not one per pool.

Scenario two-pools puts a second preview pool behind a second rule of the same HTTPRoute. The
zero-downtime run writes both pools' weights, then waits once for the gateway, at every weight
change (phase 1 at 0 %, each step, phase 3); the two writes into the one route are serialised by
resourceVersion, so neither pool's edit is lost.
"""

import re

from migration_harness import ALPHA_SERVED_BY, GA_POOL, ClusterView, answer_of, read_reports
from runner import run_playbook

from igw_sandbox.waits import wait_until
from ansible_collections.inference_gateway.migration.plugins.module_utils import api

PLAYBOOK = "playbooks/zero_downtime.yml"
STEPS = [50, 100]
QWEN_GA = "qwen-ga"
TEAM_HEADER = {"name": "x-team", "value": "qwen"}
ROLE_TASK = "inference_gateway.migration.zero_downtime_migration : Weights | "
WRITE_ITEM = re.compile(r"^(?:ok|changed): \[localhost\] => \(item=(\S+) -> (\S+)\)$", re.MULTILINE)


def test_every_weight_change_writes_all_pools_then_waits_once(clean_sandbox, tmp_path):
    clean_sandbox.seed("two-pools")
    wait_until("the preview pool to answer", lambda: answer_of(clean_sandbox) == (200, ALPHA_SERVED_BY), 60,
               interval=0.5)
    env = clean_sandbox.env
    run = run_playbook(PLAYBOOK, clean_sandbox.kubeconfig, {
        "migration_kubeconfig": clean_sandbox.kubeconfig, "migration_helm_binary": clean_sandbox.helm,
        "migration_gie_download_url": env["GIE_DOWNLOAD_URL"], "migration_chart_registry": env["GIE_CHART_REGISTRY"],
        "migration_accept_model_name_changes": True, "migration_step_weights": STEPS, "migration_pause_seconds": 0,
        "migration_backup_dest": str(tmp_path / "backups"), "report_dir": str(tmp_path / "reports")}, timeout=1200)
    assert run.returncode == 0, run.stdout[-6000:]

    tasks = run.stdout.split("\nTASK [")
    writes = [t for t in tasks if t.startswith(ROLE_TASK + "Write the weights of every pool pair")]
    waits = [t for t in tasks if t.startswith(ROLE_TASK + "Wait once until the gateway has programmed every route")]
    weight_changes = 1 + len(STEPS) + 1  # phase 1 at 0 %, each step, phase 3
    assert len(writes) == len(waits) == weight_changes, (len(writes), len(waits))
    written = [item for task in writes for item in WRITE_ITEM.findall(task)]
    assert len(written) == 2 * weight_changes
    assert set(written) == {("default/vllm-llama3-8b-instruct-preview", "default/" + GA_POOL),
                            ("default/qwen-preview", "default/" + QWEN_GA)}

    # Both pools' edits of the one route survived: each rule sends everything to its own v1 pool.
    route = ClusterView(clean_sandbox.kubeconfig).route()
    rules = route["spec"]["rules"]
    assert [[(ref["group"], ref["name"]) for ref in rule["backendRefs"]] for rule in rules] == [
        [(api.GA_GROUP, GA_POOL)], [(api.GA_GROUP, QWEN_GA)]]
    assert rules[1]["matches"][0]["headers"] == [dict(TEAM_HEADER, type="Exact")]
    (report,) = read_reports(tmp_path / "reports")
    assert report["outcome"] == "succeeded"
    assert sorted(report["pools_migrated"]) == ["default/qwen-preview", "default/vllm-llama3-8b-instruct-preview"]
