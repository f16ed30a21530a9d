"""Several pools in one run: one programming wait per step, and every pool gated by its own probe.

Scenario two-pools puts a second preview pool behind a second rule of the same HTTPRoute, matched by
the header x-team: qwen. The zero-downtime run writes both pools' weights, then waits once for the
gateway, at every weight change (phase 1 at 0 %, each step, phase 3); the two writes into the one
route are serialised by resourceVersion, so neither pool's edit is lost. Every gate probes each pool
through its own rule with a model it serves, so a pool that breaks is named by its gate while the
other pool's probe passes.
"""

import re

import pytest
from migration_harness import (
    ALPHA_POOL, ALPHA_SERVED_BY, GA_POOL, ClusterView, PlaybookRun, answer_of, read_reports, rule_v1_percent,
)
from runner import run_playbook

from igw_sandbox.modelserver import POOL_HEADER
from igw_sandbox.waits import wait_until
from ansible_collections.inference_gateway.migration.plugins.module_utils import api

PLAYBOOK = "playbooks/zero_downtime.yml"
STEPS = [50, 100]
QWEN_PREVIEW = "qwen-preview"
QWEN_GA = "qwen-ga"
LLAMA_TARGET = "pool default/%s (HTTPRoute default/llm-route rule 0)" % ALPHA_POOL
QWEN_TARGET = "pool default/%s (HTTPRoute default/llm-route rule 1)" % QWEN_PREVIEW
SERVED_BY = {LLAMA_TARGET: {"%s/default/%s" % (api.ALPHA_GROUP, ALPHA_POOL), "%s/default/%s" % (api.GA_GROUP, GA_POOL)},
             QWEN_TARGET: {"%s/default/%s" % (api.ALPHA_GROUP, QWEN_PREVIEW),
                           "%s/default/%s" % (api.GA_GROUP, QWEN_GA)}}
TEAM_HEADER = {"name": "x-team", "value": "qwen"}
ROLE_TASK = "inference_gateway.migration.zero_downtime_migration : Weights | "
# Long enough for the test to take the qwen v1 endpoint picker down while the first step is watched.
BROKEN_PAUSE_SECONDS = 15
BROKEN_GATE_WAIT_SECONDS = 20
# Enough probe requests that a quarter of the qwen traffic failing cannot go unseen (0.75 ** 40 < 1e-5).
PROBE_REQUESTS = 40
# The pools a weight-writing task moves, from its name.
WRITE_POOLS = re.compile(r"v1 percent \d+ for (.*)\] \*+")


@pytest.fixture
def two_pools(clean_sandbox):
    clean_sandbox.seed("two-pools")
    wait_until("the preview pool to answer", lambda: answer_of(clean_sandbox) == (200, ALPHA_SERVED_BY), 60,
               interval=0.5)
    return clean_sandbox


def run_vars(sandbox, tmp_path, **extra):
    """The playbook's defaults pointed at the sandbox; every probe answer counted by the pool that served it."""
    env = sandbox.env
    return {"migration_kubeconfig": sandbox.kubeconfig, "migration_helm_binary": sandbox.helm,
            "migration_gie_download_url": env["GIE_DOWNLOAD_URL"], "migration_chart_registry": env["GIE_CHART_REGISTRY"],
            "migration_accept_model_name_changes": True, "migration_step_weights": STEPS, "migration_pause_seconds": 0,
            "verify_probe_group_by_header": POOL_HEADER,
            "migration_backup_dest": str(tmp_path / "backups"), "report_dir": str(tmp_path / "reports"), **extra}


def test_every_weight_change_writes_all_pools_then_waits_once(two_pools, tmp_path):
    generation_before = ClusterView(two_pools.kubeconfig).route()["metadata"]["generation"]
    run = run_playbook(PLAYBOOK, two_pools.kubeconfig, run_vars(two_pools, tmp_path), timeout=1200)
    assert run.returncode == 0, run.stdout[-6000:]

    tasks = run.stdout.split("\nTASK [")
    writes = [t for t in tasks if t.startswith(ROLE_TASK + "Write the weights of every pool pair")]
    waits = [t for t in tasks if t.startswith(ROLE_TASK + "Wait once until the gateway has programmed every route")]
    weight_changes = 1 + len(STEPS) + 1  # phase 1 at 0 %, each step, phase 3
    assert len(writes) == len(waits) == weight_changes, (len(writes), len(waits))
    # Each write task moved both pools.
    assert [sorted(WRITE_POOLS.search(task.splitlines()[0]).group(1).split(", ")) for task in writes] == [
        ["default/qwen-preview", "default/" + ALPHA_POOL]] * weight_changes

    # Both pools' edits of the one route survived: each rule sends everything to its own v1 pool, and the route was
    # written once per pool at every weight change (a lost or repeated edit would change the count).
    route = ClusterView(two_pools.kubeconfig).route()
    assert route["metadata"]["generation"] == generation_before + 2 * weight_changes
    rules = route["spec"]["rules"]
    assert [[(ref["group"], ref["name"]) for ref in rule["backendRefs"]] for rule in rules] == [
        [(api.GA_GROUP, GA_POOL)], [(api.GA_GROUP, QWEN_GA)]]
    assert rules[1]["matches"][0]["headers"] == [dict(TEAM_HEADER, type="Exact")]
    (report,) = read_reports(tmp_path / "reports")
    assert report["outcome"] == "succeeded"
    assert sorted(report["pools_migrated"]) == ["default/qwen-preview", "default/vllm-llama3-8b-instruct-preview"]

    # Every gate probed each pool through its own rule, with a model that pool serves, and only that pool answered.
    for gate in report["gates"]:
        targets = dict((target["name"], target) for target in gate["probe"]["targets"])
        assert sorted(targets) == sorted(SERVED_BY), gate["name"]
        for name, target in targets.items():
            assert target["passed"] and target["ok"] == target["requests"], (gate["name"], target["summary"])
            assert set(target["by_header"]) <= SERVED_BY[name], (gate["name"], name, target["by_header"])
    # The Markdown report has a row per pool under each gate's probe.
    markdown = sorted((tmp_path / "reports").glob("migration-localhost-*.md"))[-1].read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| pool default/")]
    assert len(rows) == 2 * len(report["gates"]) and all(row.endswith("| passed |") for row in rows), rows


def test_the_gate_names_the_one_pool_whose_v1_stack_broke_and_every_pool_rolls_back(two_pools, tmp_path):
    view = ClusterView(two_pools.kubeconfig)

    def qwen_v1_percent():
        return rule_v1_percent(view.route(), 1)

    run = PlaybookRun(PLAYBOOK, two_pools, run_vars(two_pools, tmp_path, migration_step_weights=[25, 50, 100],
                                                    migration_pause_seconds=BROKEN_PAUSE_SECONDS,
                                                    verify_wait_timeout=BROKEN_GATE_WAIT_SECONDS,
                                                    verify_probe_requests=PROBE_REQUESTS),
                      tmp_path / "broken.log")
    try:
        run.watch("the qwen v1 pool getting 25 % of its rule", lambda: qwen_v1_percent() == 25, 600, 0.1)
        view.scale(QWEN_GA + "-epp", 0)
        assert run.wait(900) != 0, run.tail()
    finally:
        run.kill()

    (report,) = read_reports(tmp_path / "reports")
    assert report["outcome"] == "rolled_back", report["error"]
    failed = next(gate for gate in report["gates"] if not gate["passed"])
    assert failed["name"] == "phase 2: 25 % on v1"
    targets = dict((target["name"], target) for target in failed["probe"]["targets"])
    assert not targets[QWEN_TARGET]["passed"] and targets[LLAMA_TARGET]["passed"], failed["probe"]["summary"]
    assert failed["probe"]["summary"].startswith("FAILED %s: " % QWEN_TARGET)
    error = " ".join(report["error"].split())
    assert "FAILED %s" % QWEN_TARGET in error and "FAILED %s" % LLAMA_TARGET not in error
    # As docs/verification.md says: a step is one step for every pool of the run, so both pools went back.
    assert report["gates"][-1]["name"] == "rollback: 0 % on v1" and report["gates"][-1]["passed"]
    assert view.v1_percent() == 0 and qwen_v1_percent() == 0
