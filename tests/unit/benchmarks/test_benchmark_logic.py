"""The pure logic of the benchmarks (benchmarks/): the generated estate, the split of a playbook run's time into
programming waits and the rest, the downtime the clients saw, and the machine's busy cores."""

import sys

import pytest
from support import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import detection_scale  # noqa: E402
import migration_runs  # noqa: E402
import pool_scaling  # noqa: E402
import simple_downtime  # noqa: E402


def test_the_estate_spreads_pools_models_and_routes_over_every_namespace():
    objects = detection_scale.estate_objects(namespaces=3, pools=7, models_per_pool=2)
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    assert {kind: len(items) for kind, items in by_kind.items()} == {
        "Namespace": 3, "InferencePool": 7, "InferenceModel": 14, "HTTPRoute": 7}
    assert {p["metadata"]["namespace"] for p in by_kind["InferencePool"]} == {
        n["metadata"]["name"] for n in by_kind["Namespace"]}
    # Every model and route refers to a pool of its own namespace, so detection finds none of them orphaned.
    pools = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in by_kind["InferencePool"]}
    assert {(m["metadata"]["namespace"], m["spec"]["poolRef"]["name"]) for m in by_kind["InferenceModel"]} == pools
    assert {(r["metadata"]["namespace"], r["spec"]["rules"][0]["backendRefs"][0]["name"])
            for r in by_kind["HTTPRoute"]} == pools
    assert len({(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects}) == len(objects)


def test_the_full_estate_has_the_counts_of_issue_19():
    objects = detection_scale.estate_objects(namespaces=1000)
    counts = {}
    for obj in objects:
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    assert counts == {"Namespace": 1000, "InferencePool": 2000, "InferenceModel": 4000, "HTTPRoute": 2000}


def test_chunks_deal_every_item_once():
    parts = detection_scale.chunks(list(range(10)), 4)
    assert sorted(i for part in parts for i in part) == list(range(10))
    assert [len(p) for p in parts] == [3, 3, 2, 2]
    assert detection_scale.chunks([1], 4) == [[1]]


def test_only_the_programming_waits_count_as_waits():
    durations = [
        ("Preflight | Read the cluster", 3.0),
        ("Weights | Wait once until the gateway has programmed every route written, for seconds at most 300", 11.5),
        ("GA stack | Wait until the endpoint picker of the v1 pool listens", 4.0),
        ("Weights | Wait once until the gateway has programmed every route written, for seconds at most 300", 9.5),
        ("Simple | Wait once until the gateway has programmed every route switched, for seconds at most 300", 10.0),
    ]
    assert migration_runs.split_programming_waits(durations) == (31.0, 7.0, 3)
    assert migration_runs.split_programming_waits([]) == (0, 0, 0)


def test_the_durations_of_a_profile_tasks_log_split_into_waits_and_the_rest(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(
        "TASK [preflight : Preflight | Read the cluster] ****\n"
        "Monday 07 December 2026  15:49:34 +0000 (0:00:00.060)       0:00:01.000 ****\n"
        "TASK [zero_downtime_migration : Weights | Wait once until the gateway has programmed every route written] **\n"
        "Monday 07 December 2026  15:49:36 +0000 (0:00:02.500)       0:00:03.500 ****\n"
        "TASK [verify : Verify | Probe] ****\n"
        "Monday 07 December 2026  15:49:46 +0000 (0:00:10.250)       0:00:13.750 ****\n"
        "PLAY RECAP ****\n"
        "Monday 07 December 2026  15:49:47 +0000 (0:00:01.000)       0:00:14.750 ****\n")
    durations = list(migration_runs._task_timings().previous_task_durations(log))
    assert migration_runs.split_programming_waits(durations) == (10.25, 3.5, 1)


def test_the_clients_downtime_runs_from_the_first_failure_to_the_last():
    windows = [{"start": 105.0, "end": 108.0}, {"start": 100.0, "end": 102.5}]
    assert simple_downtime.client_downtime(windows) == 8.0
    assert simple_downtime.client_downtime([]) == 0.0


def test_busy_cores_count_what_was_not_idle(monkeypatch):
    monkeypatch.setattr(pool_scaling.os, "cpu_count", lambda: 2)
    assert pool_scaling.busy_cores((100, 1000), (250, 1200)) == pytest.approx(1.5)
    assert pool_scaling.busy_cores((100, 1000), (100, 1000)) == 0.0
