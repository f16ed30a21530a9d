"""The migration playbooks of issue 9 on the sandbox, run as an operator runs them.

alpha-basic under 50 requests per second of the base model: zero_downtime.yml migrates it
with no failed request and a second run changes nothing; simple.yml migrates it with a
measured downtime; a v1 endpoint picker that goes down in the middle of phase 2 makes
zero_downtime.yml roll the traffic back and fail naming the gate; and a run killed in any
phase is finished by the next run with no failed request.

Every playbook run is bounded by PLAYBOOK_TIMEOUT and every wait for the cluster by
WATCH_TIMEOUT (subprocess and polling timeouts; no pytest-timeout plugin here).
"""

import json
import time

import pytest
from migration_harness import (
    ALPHA_POOL, ALPHA_SERVED_BY, GA_EPP, GA_POOL, GA_SERVED_BY, PLAYBOOK_TIMEOUT, WATCH_INTERVAL, WATCH_TIMEOUT,
    ZERO_DOWNTIME, api, assert_migrated, assert_no_failed_request, assert_v1_stack_of_release, completion,
    read_reports,
)

pytestmark = pytest.mark.sandbox

SIMPLE = "playbooks/simple.yml"
# After the rollback, the load keeps going this long so that where traffic went can be seen.
AFTER_ROLLBACK_SECONDS = 5
# Long enough for the test to take the v1 endpoint picker down while a phase 2 step is watched.
ROLLBACK_PAUSE_SECONDS = 20
# How long a gate waits for the v1 endpoint picker to come back before it fails.
GATE_WAIT_SECONDS = 20
# Enough probe requests that a quarter of the traffic failing cannot go unseen (0.75 ** 40 < 1e-5).
PROBE_REQUESTS = 40
# The load generator and the playbook read the same clock, but sample it at different moments.
CLOCK_TOLERANCE_SECONDS = 1


@pytest.mark.parametrize("flavour", ["old", "new"])
def test_zero_downtime_migrates_alpha_basic_under_load_and_a_second_run_changes_nothing(
        flavour, serving, view, load, start_playbook, report_dir):
    first = start_playbook(ZERO_DOWNTIME, "first")
    assert first.wait(PLAYBOOK_TIMEOUT) == 0, first.tail()
    assert first.recap()["changed"] > 0
    assert_migrated(view)
    (report,) = read_reports(report_dir)
    assert report["outcome"] == "succeeded"
    assert report["pools_migrated"] == ["default/" + ALPHA_POOL]
    assert report["failed_requests"] == 0
    assert report["gates"] and all(gate["passed"] for gate in report["gates"])
    assert_v1_stack_of_release(serving, view, api.GA_RELEASE)

    route_version = view.route()["metadata"]["resourceVersion"]
    second = start_playbook(ZERO_DOWNTIME, "second")
    assert second.wait(PLAYBOOK_TIMEOUT) == 0, second.tail()
    traffic = load.stop()

    assert second.recap()["changed"] == 0, second.tail()
    assert view.route()["metadata"]["resourceVersion"] == route_version
    assert_migrated(view)
    assert [r["outcome"] for r in read_reports(report_dir)] == ["succeeded", "succeeded"]
    # The load ran from before the first run started until after the second ended, and never failed.
    assert traffic["started"] < first.started and traffic["finished"] > second.finished
    assert traffic["sent"] >= 0.9 * traffic["settings"]["rate"] * (second.finished - first.started)
    assert_no_failed_request(traffic)
    assert set(traffic["per_pool"]) == {ALPHA_SERVED_BY, GA_SERVED_BY}
    # Each pool's real endpoint picker spread the load over the ready pods, not one.
    records = [json.loads(line) for line in load.records_path.read_text().splitlines()]
    for pool in (ALPHA_SERVED_BY, GA_SERVED_BY):
        assert len({r["pod"] for r in records if r["pool"] == pool}) >= 2, pool

    # Through the real v1.0.0 EPP the adapter keeps its name (alpha-basic's food-review model maps to
    # itself, so the preflight had no rewrite to warn about), and a model that had no InferenceModel
    # is no longer refused by the EPP (the v0.3.0 EPP's 404) but passed through to vLLM, which refuses it.
    status, headers, body = completion(serving, "food-review")
    assert (status, headers["x-sandbox-pool"], json.loads(body)["model"]) == (200, GA_SERVED_BY, "food-review")
    status, headers, body = completion(serving, "no-such-model")
    assert (status, headers.get("x-sandbox-failure")) == (404, None)
    assert json.loads(body)["message"] == "The model `no-such-model` does not exist."


@pytest.mark.parametrize("flavour", ["old", "new"])
def test_simple_migrates_alpha_basic_and_reports_the_downtime_it_measured(flavour, view, load, start_playbook,
                                                                          report_dir):
    run = start_playbook(SIMPLE, "simple")
    assert run.wait(PLAYBOOK_TIMEOUT) == 0, run.tail()
    traffic = load.stop()

    assert_migrated(view)
    (report,) = read_reports(report_dir)
    assert report["outcome"] == "succeeded"
    assert report["downtime_seconds"] > 0
    # The simple path removes the preview stack before the v1 stack serves, so clients saw an outage,
    # and it lay within the downtime the report measured.
    windows = traffic["failure_windows"]
    assert windows, "no request failed: the simple path cannot have been measured"
    assert windows[-1]["end"] - windows[0]["start"] <= report["downtime_seconds"] + CLOCK_TOLERANCE_SECONDS
    assert traffic["per_pool"].get(GA_SERVED_BY, 0) > 0


@pytest.mark.parametrize("failed_at", [25, 50])
def test_zero_downtime_rolls_back_when_the_v1_endpoint_picker_fails_in_phase_2(
        failed_at, view, load, start_playbook, report_dir):
    run = start_playbook(ZERO_DOWNTIME, "rollback", migration_step_weights=[25, 50, 100],
                         migration_pause_seconds=ROLLBACK_PAUSE_SECONDS, verify_wait_timeout=GATE_WAIT_SECONDS,
                         verify_probe_requests=PROBE_REQUESTS)
    run.watch("the v1 pool getting %d %% of the traffic" % failed_at, lambda: view.v1_percent() == failed_at,
              WATCH_TIMEOUT, WATCH_INTERVAL)
    view.scale(GA_EPP, 0)

    assert run.wait(PLAYBOOK_TIMEOUT) != 0, run.tail()
    time.sleep(AFTER_ROLLBACK_SECONDS)
    traffic = load.stop()

    (report,) = read_reports(report_dir)
    assert report["outcome"] == "rolled_back", report["error"]
    failed_gate, *failed_rollbacks = [gate for gate in report["gates"] if not gate["passed"]]
    assert failed_gate["name"] == "phase 2: %d %% on v1" % failed_at
    assert report["error"].startswith("Gate '%s' failed" % failed_gate["name"]), report["error"]
    assert "Gate '%s' failed" % failed_gate["name"] in run.output
    # The report says how many requests the failed step cost, as the gate's probe measured them.
    assert failed_gate["probe"]["failed_requests"] > 0, failed_gate
    assert report["failed_requests"] >= failed_gate["probe"]["failed_requests"]
    if failed_at == 50:
        # The step to 25 % had passed, but with the v1 EPP down it fails its gate as well: all traffic
        # goes back to preview instead of staying on the broken v1 pool.
        assert [gate["name"] for gate in failed_rollbacks] == ["rollback: 25 % on v1"]
        assert "The rollback to 25 % on v1, the last step that passed, failed its gate too." in report["error"]
    else:
        assert failed_rollbacks == []
    assert report["gates"][-1]["name"] == "rollback: 0 % on v1" and report["gates"][-1]["passed"]
    assert view.v1_percent() == 0
    records = [json.loads(line) for line in load.records_path.read_text().splitlines()]
    served_after = [r for r in records if r["start"] > run.finished]
    assert served_after and all(r["status"] == 200 and r["pool"] == ALPHA_SERVED_BY for r in served_after)
    assert view.helm_releases().get(ALPHA_POOL) == "deployed"
    assert set(api.ALPHA_CRDS) <= view.crd_names()
    # The fault was real for clients too: the load saw the v1 pool's share fail until the rollback.
    assert traffic["per_pool_status"][GA_SERVED_BY].get("503", 0) > 0, traffic["per_pool_status"]


# Where a run is killed, in the order one migration reaches them: what the test waits for before the
# SIGKILL, and what must still hold right after it (so that the kill landed in that phase and not later).
KILL_POINTS = (
    ("phase1", "the v1 Helm release being deployed",
     lambda view: view.helm_releases().get(GA_POOL) == "deployed",
     lambda view: view.v1_percent() == 0),
    ("phase2", "the v1 pool getting part of the traffic",
     lambda view: 0 < view.v1_percent() < 100,
     lambda view: 0 < view.v1_percent() < 100),
    ("phase3", "the preview Helm release being uninstalled",
     lambda view: GA_POOL in view.helm_releases() and ALPHA_POOL not in view.helm_releases(),
     lambda view: set(api.ALPHA_CRDS) <= view.crd_names()),
)
# Three steps with pauses between them, so that a kill can land inside phase 2.
KILLED_RUN_VARS = {"migration_step_weights": [25, 50, 100], "migration_pause_seconds": 5}


def test_zero_downtime_killed_in_each_phase_in_turn_is_finished_by_the_run_after(
        view, load, start_playbook, report_dir):
    """Each run is killed one phase further than the one before it: the second run resumes after a kill in
    phase 1, the third after a kill in phase 2 and the fourth after a kill in phase 3, which it finishes."""
    for phase, point, reached, still_there in KILL_POINTS:
        killed = start_playbook(ZERO_DOWNTIME, "killed-in-" + phase, **KILLED_RUN_VARS)
        killed.watch(point, lambda: reached(view), WATCH_TIMEOUT, WATCH_INTERVAL)
        killed.kill()
        assert still_there(view), "the kill came too late for %s:\n%s" % (phase, killed.tail())

    resumed = start_playbook(ZERO_DOWNTIME, "resumed", **KILLED_RUN_VARS)
    assert resumed.wait(PLAYBOOK_TIMEOUT) == 0, resumed.tail()
    traffic = load.stop()

    assert_migrated(view)
    # None of the killed runs wrote a report.
    assert [r["outcome"] for r in read_reports(report_dir)] == ["succeeded"]
    assert_no_failed_request(traffic)


def test_simple_killed_between_removing_the_preview_stack_and_switching_is_finished_from_the_backup(
        view, load, start_playbook, report_dir):
    killed = start_playbook(SIMPLE, "killed")
    killed.watch("the preview Helm release being uninstalled",
                 lambda: ALPHA_POOL not in view.helm_releases(), WATCH_TIMEOUT, WATCH_INTERVAL)
    killed.kill()
    assert GA_POOL not in view.helm_releases() and view.v1_percent() == 0, "the kill came too late:\n" + killed.tail()
    assert view.names(api.ALPHA_POOL) == [], "the preview pool outlived its release:\n" + killed.tail()
    # The gateway keeps rewriting the route's status (its ref no longer resolves): compare what the playbook owns.
    route_before = view.route()

    # The zero-downtime path cannot shift traffic gradually away from a pool that is gone: it refuses, and says how on.
    refused = start_playbook(ZERO_DOWNTIME, "refused")
    assert refused.wait(PLAYBOOK_TIMEOUT) != 0, refused.tail()
    assert "HTTPRoute %s/llm-route rule 0 -> InferencePool %s %s/%s" % (
        "default", api.ALPHA_GROUP, "default", ALPHA_POOL) in refused.output, refused.tail()
    assert "Run playbooks/simple.yml with the migration_backup_dest of that run" in refused.output
    route_after = view.route()
    assert (route_after["metadata"]["generation"], route_after["spec"]) == (
        route_before["metadata"]["generation"], route_before["spec"])
    assert GA_POOL not in view.helm_releases()

    resumed = start_playbook(SIMPLE, "resumed")
    assert resumed.wait(PLAYBOOK_TIMEOUT) == 0, resumed.tail()
    time.sleep(AFTER_ROLLBACK_SECONDS)
    traffic = load.stop()

    assert_migrated(view)
    assert "Its migration is finished from backup" in resumed.output, resumed.tail()
    refused_report, resumed_report = read_reports(report_dir)
    assert refused_report["outcome"] == "failed"
    assert resumed_report["outcome"] == "succeeded"
    assert resumed_report["pools_migrated"] == ["default/" + ALPHA_POOL]
    # Clients saw the outage of the interrupted run end once the resumed run switched the route to the v1 pool.
    records = [json.loads(line) for line in load.records_path.read_text().splitlines()]
    served_after = [r for r in records if r["start"] > resumed.finished]
    assert served_after and all(r["status"] == 200 and r["pool"] == GA_SERVED_BY for r in served_after)
