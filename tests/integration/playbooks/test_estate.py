"""The estate: six preview pools of four install styles in three namespaces, behind two Gateways, migrated in
one zero-downtime run under load on every host and path that reaches a preview pool.

Scenario estate (tests/sandbox/scenarios/estate) routes chat.example.com through the external Gateway to
three pools (one of them in another namespace, allowed by a ReferenceGrant for the preview group),
*.llm.example.com through both Gateways to the platform's two pools, and search.internal.example.com
through the internal Gateway to two more. A load generator per host, Gateway and rule sends the model its
pool serves; every one must see no failed request while the run moves its pool from preview to v1.
"""

import json
import time

import pytest
from migration_harness import (
    RECAP, TIMED_OUTPUT, ClusterView, PlaybookRun, assert_v1_stack_of_release, completion, read_reports, rule_v1_percent,
)
from runner import run_playbook

from igw_sandbox import scenarios
from igw_sandbox.loadgen import LoadGenerator
from igw_sandbox.modelserver import POOL_HEADER
from igw_sandbox.waits import wait_until
from ansible_collections.inference_gateway.migration.plugins.module_utils import api, releases
from ansible_collections.inference_gateway.migration.plugins.module_utils.convert import ga_release_name

# Each test migrates six pools: the suite starts these first (tests/integration/conftest.py).
LONGEST = True
PLAYBOOK = "playbooks/zero_downtime.yml"
RATE_PER_TARGET = 6
LOAD_MAX_SECONDS = 900


def _model_of(record, namespace, name):
    pool = next(p for p in record["pools"] if (p["namespace"], p["name"]) == (namespace, name))
    return pool["models"][0]["model_name"]


# (gateway, Host, headers, pool namespace, pool name): every host, path and rule that reaches a preview pool.
LOAD_TARGETS = [
    ("external", "chat.example.com", {}, "team-chat", "llama-chat"),
    ("external", "chat.example.com", {"x-model-family": "qwen"}, "team-chat", "qwen-chat"),
    ("external", "chat.example.com", {"x-pool": "shared"}, "platform", "shared-llama"),
    ("external", "a.llm.example.com", {}, "platform", "shared-llama"),
    ("internal", "b.llm.example.com", {}, "platform", "shared-llama"),
    ("external", "a.llm.example.com", {"x-model": "mistral"}, "platform", "mistral"),
    ("internal", "b.llm.example.com", {"x-model": "mistral"}, "platform", "mistral"),
    ("internal", "search.internal.example.com", {"x-task": "embed"}, "team-search", "embed"),
    ("internal", "search.internal.example.com", {"x-task": "rerank"}, "team-search", "rerank"),
]
ROUTES = (("team-chat", "chat-route"), ("platform", "platform-route"), ("team-search", "search-route"))
GRANT = ("platform", "chat-routes-to-shared-pools")
# The pool whose v1 endpoint picker breaks in phase 2 of the broken-pool run, and its probe target's name.
BROKEN = ("team-search", "rerank")
BROKEN_TARGET = "pool team-search/rerank (HTTPRoute team-search/search-route rule 1)"
# Long enough for the test to take the broken pool's v1 endpoint picker down while the first step is watched.
BROKEN_PAUSE_SECONDS = 15
BROKEN_GATE_WAIT_SECONDS = 20


def _served_by(group, namespace, name):
    return "%s/%s/%s" % (group, namespace, name)


def _answer(sandbox, target):
    """(status, pool that served) of one completion request along a load target's path."""
    status, headers, _body = completion(sandbox, target["model"], target["address"],
                                        dict(target["headers"], Host=target["host"]))
    return status, headers.get(POOL_HEADER.lower())


@pytest.fixture
def estate(clean_sandbox):
    clean_sandbox.seed("estate")
    record = scenarios.load("estate")["record"]
    kube = clean_sandbox.kube()
    addresses = dict((g["name"], kube.get_json("gateway", g["name"], "-n", g["namespace"])["status"]["addresses"][0]
                      ["value"]) for g in record["gateways"])
    targets = [dict(gateway=gateway, address=addresses[gateway], host=host, headers=headers, namespace=namespace,
                    pool=pool, model=_model_of(record, namespace, pool)) for gateway, host, headers, namespace, pool
               in LOAD_TARGETS]
    for target in targets:
        expected = (200, _served_by(api.ALPHA_GROUP, target["namespace"], target["pool"]))
        wait_until("%(host)s %(headers)s through %(gateway)s to answer from %(pool)s" % target,
                   lambda: _answer(clean_sandbox, target) == expected, 90, interval=0.5)
    return clean_sandbox, targets


def _routes(kube):
    return dict(((namespace, name), kube.get_json("httproute", name, "-n", namespace)["spec"])
                for namespace, name in ROUTES)


def _as_migrated(spec):
    """The route spec the migration should leave: each preview backendRef replaced by its v1 pool, all else equal."""
    migrated = json.loads(json.dumps(spec))
    for rule in migrated.get("rules") or []:
        rule["backendRefs"] = [dict(ref, group=api.GA_GROUP, name=ga_release_name(ref["name"]), weight=100)
                               if ref.get("group") == api.ALPHA_GROUP else ref for ref in rule.get("backendRefs") or []]
    return migrated


def _route_refs(spec):
    return [[(ref.get("group"), ref.get("kind"), ref.get("namespace"), ref["name"]) for ref in rule["backendRefs"]]
            for rule in spec["rules"]]


def _run_vars(sandbox, tmp_path, release, **extra):
    env = sandbox.env
    return {"migration_kubeconfig": sandbox.kubeconfig, "migration_helm_binary": sandbox.helm,
            "migration_gie_download_url": env["GIE_DOWNLOAD_URL"], "migration_chart_registry": env["GIE_CHART_REGISTRY"],
            "migration_release": release, "migration_accept_model_name_changes": True, "migration_pause_seconds": 0,
            "migration_backup_dest": str(tmp_path / "backups"), "report_dir": str(tmp_path / "reports"), **extra}


def _start_load(targets, tmp_path):
    """A load generator per target, each sending the model its pool serves with the target's Host and headers."""
    return [LoadGenerator(url="http://%s:80/v1/completions" % target["address"], rate=RATE_PER_TARGET,
                          duration=LOAD_MAX_SECONDS, max_requests=RATE_PER_TARGET * LOAD_MAX_SECONDS,
                          model=target["model"], summary_path=tmp_path / ("load-%d.json" % i),
                          headers=dict(target["headers"], Host=target["host"]), workers=4).start()
            for i, target in enumerate(targets)]


def _where(target):
    return "%(host)s %(headers)s through %(gateway)s (pool %(namespace)s/%(pool)s)" % target


def _v1_served_by(target):
    return _served_by(api.GA_GROUP, target["namespace"], ga_release_name(target["pool"]))


def _assert_estate_migrated(sandbox, targets, routes_before, release, tmp_path):
    """No preview object, reference or CRD is left; every rule that reached a preview pool reaches its v1 pool and
    the rest of each route is as it was; the grant allows the v1 pools only; each pool serves through the v1 stack
    of ``release``; the report names every pool migrated and a probe of every pool."""
    kube = sandbox.kube()
    crds = set(crd["metadata"]["name"] for crd in kube.get_json("crd")["items"])
    assert not crds & set(api.ALPHA_CRDS), sorted(crds & set(api.ALPHA_CRDS))
    assert set(releases.facts(release).stack_crds) <= crds, sorted(crds)
    routes_after = _routes(kube)
    for key, spec in routes_before.items():
        after = routes_after[key]
        assert _route_refs(after) == _route_refs(_as_migrated(spec)), key
        assert dict(after, rules=None) == dict(spec, rules=None), key
        assert [dict(rule, backendRefs=None) for rule in after["rules"]] == [
            dict(rule, backendRefs=None) for rule in spec["rules"]], key
    assert kube.get_json("referencegrant", GRANT[1], "-n", GRANT[0])["spec"]["to"] == [
        {"group": api.GA_GROUP, "kind": "InferencePool"}]
    for target in targets:
        assert _answer(sandbox, target) == (
            200, _v1_served_by(target)), _where(target)
    record = scenarios.load("estate")["record"]
    assert_v1_stack_of_release(sandbox, ClusterView(sandbox.kubeconfig), release,
                               [(p["namespace"], ga_release_name(p["name"])) for p in record["pools"]])
    report = read_reports(tmp_path / "reports")[-1]
    assert report["outcome"] == "succeeded"
    assert sorted(report["pools_migrated"]) == sorted("%s/%s" % (p["namespace"], p["name"]) for p in record["pools"])
    probed = set(row["name"] for gate in report["gates"] for row in (gate.get("probe") or {}).get("targets") or [])
    assert len(probed) == len(record["pools"]), sorted(probed)
    return routes_after


# v1.0.0 with the check that a second run changes nothing; v1.3.0 (InferenceModelRewrite, its RBAC); v1.5.0 (the
# chart's renamed values, FailOpen by default, the epplib chart).
@pytest.mark.parametrize("release", ["v1.0.0", "v1.3.0", "v1.5.0"])
def test_zero_downtime_migrates_the_whole_estate_in_one_run_under_load_on_every_pool(estate, tmp_path, release):
    sandbox, targets = estate
    routes_before = _routes(sandbox.kube())
    run_vars = _run_vars(sandbox, tmp_path, release)

    generators = _start_load(targets, tmp_path)
    try:
        run = run_playbook(PLAYBOOK, sandbox.kubeconfig, run_vars, env=TIMED_OUTPUT, timeout=1500)
    finally:
        summaries = [generator.stop() for generator in generators]
    # Kept for hack/playbook-time-by-task.py (the suite's time by kind of task).
    (tmp_path / "first.log").write_text(run.stdout)
    assert run.returncode == 0, run.stdout[-8000:]

    for target, summary in zip(targets, summaries):
        assert summary["sent"] > 0 and summary["failed"] == 0, (_where(target), summary)
        preview = _served_by(api.ALPHA_GROUP, target["namespace"], target["pool"])
        assert set(summary["per_pool"]) == {preview, _v1_served_by(target)}, (_where(target), summary["per_pool"])
    routes_after = _assert_estate_migrated(sandbox, targets, routes_before, release, tmp_path)

    if release == api.GA_RELEASE:
        again = run_playbook(PLAYBOOK, sandbox.kubeconfig, run_vars, env=TIMED_OUTPUT, timeout=900)
        (tmp_path / "second.log").write_text(again.stdout)
        assert again.returncode == 0, again.stdout[-6000:]
        assert RECAP.search(again.stdout).group(2) == "0", again.stdout[-6000:]
        assert [r["outcome"] for r in read_reports(tmp_path / "reports")] == ["succeeded", "succeeded"]
        assert _routes(sandbox.kube()) == routes_after


def test_one_broken_pool_of_six_is_named_every_pool_rolls_back_and_the_next_run_finishes_at_v1_5(estate, tmp_path):
    """As docs/verification.md says: a step is one step for every pool of the run, so when one pool's v1 stack
    fails its gate, every pool goes back to the last step that passed; the other pools lose no request meanwhile.
    Once the pool is repaired, the next run finishes the migration (target v1.5.0)."""
    sandbox, targets = estate
    kube = sandbox.kube()
    routes_before = _routes(kube)
    namespace, pool = BROKEN
    v1_epp = ga_release_name(pool) + "-epp"

    def broken_pool_v1_percent():
        return rule_v1_percent(kube.get_json("httproute", "search-route", "-n", namespace), 1)

    generators = _start_load(targets, tmp_path)
    try:
        run = PlaybookRun(PLAYBOOK, sandbox, _run_vars(sandbox, tmp_path, "v1.5.0",
                                                       migration_pause_seconds=BROKEN_PAUSE_SECONDS,
                                                       verify_wait_timeout=BROKEN_GATE_WAIT_SECONDS),
                          tmp_path / "broken.log")
        try:
            run.watch("the broken pool's v1 pool getting 50 % of its rule", lambda: broken_pool_v1_percent() == 50,
                      900, 0.1)
            broke_at = time.time()
            kube.kubectl("scale", "deployment", v1_epp, "-n", namespace, "--replicas=0")
            assert run.wait(900) != 0, run.tail()
            rolled_back_at = time.time()
        finally:
            run.kill()
        (report,) = read_reports(tmp_path / "reports")
        assert report["outcome"] == "rolled_back", report["error"]
        failed = next(gate for gate in report["gates"] if not gate["passed"])
        assert failed["name"] == "phase 2: 50 % on v1"
        assert failed["probe"]["summary"].startswith("FAILED %s: " % BROKEN_TARGET), failed["probe"]["summary"]
        assert [t["name"] for t in failed["probe"]["targets"] if not t["passed"]] == [BROKEN_TARGET]
        assert report["gates"][-1]["name"] == "rollback: 0 % on v1" and report["gates"][-1]["passed"]
        for key, spec in _routes(kube).items():
            assert all(ref.get("weight", 1) == 0 for rule in spec["rules"] for ref in rule["backendRefs"]
                       if ref["group"] == api.GA_GROUP), (key, spec["rules"])

        kube.kubectl("scale", "deployment", v1_epp, "-n", namespace, "--replicas=1")
        again = run_playbook(PLAYBOOK, sandbox.kubeconfig, _run_vars(sandbox, tmp_path, "v1.5.0"), env=TIMED_OUTPUT,
                             timeout=1500)
        (tmp_path / "finished.log").write_text(again.stdout)
    finally:
        summaries = [generator.stop() for generator in generators]
    assert again.returncode == 0, again.stdout[-8000:]

    for target, summary in zip(targets, summaries):
        if (target["namespace"], target["pool"]) != BROKEN:
            assert summary["sent"] > 0 and summary["failed"] == 0, (_where(target), summary)
            continue
        # The broken pool lost requests only while its v1 stack was down and weighted, not after the rollback.
        for window in summary["failure_windows"]:
            # A request already in flight when the picker went away counts from before it (a second's margin).
            assert broke_at - 1 <= window["start"] and window["end"] <= rolled_back_at, (
                window, broke_at, rolled_back_at)
    _assert_estate_migrated(sandbox, targets, routes_before, "v1.5.0", tmp_path)


def test_simple_migrates_the_whole_estate_and_reports_the_downtime_of_every_pool(estate, tmp_path):
    sandbox, targets = estate
    kube = sandbox.kube()
    run = run_playbook("playbooks/simple.yml", sandbox.kubeconfig, _run_vars(sandbox, tmp_path, api.GA_RELEASE),
                       env=TIMED_OUTPUT, timeout=1500)
    (tmp_path / "simple.log").write_text(run.stdout)
    assert run.returncode == 0, run.stdout[-8000:]

    for target in targets:
        assert _answer(sandbox, target) == (
            200, _v1_served_by(target)), _where(target)
    (report,) = read_reports(tmp_path / "reports")
    pools = scenarios.load("estate")["record"]["pools"]
    by_pool = report["downtime_by_pool"]
    assert sorted(name.split(" (")[0] for name in by_pool) == sorted(
        "pool %s/%s" % (p["namespace"], p["name"]) for p in pools), by_pool
    assert all(0 < seconds <= report["downtime_seconds"] for seconds in by_pool.values()), report
    assert max(by_pool.values()) == pytest.approx(report["downtime_seconds"], abs=2.0), report
    assert kube.get_json("referencegrant", GRANT[1], "-n", GRANT[0])["spec"]["to"] == [
        {"group": api.GA_GROUP, "kind": "InferencePool"}]
