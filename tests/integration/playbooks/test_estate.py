"""The estate: six preview pools of four install styles in three namespaces, behind two Gateways, migrated in
one zero-downtime run under load on every host and path that reaches a preview pool.

Scenario estate (tests/sandbox/scenarios/estate) routes chat.example.com through the external Gateway to
three pools (one of them in another namespace, allowed by a ReferenceGrant for the preview group),
*.llm.example.com through both Gateways to the platform's two pools, and search.internal.example.com
through the internal Gateway to two more. A load generator per host, Gateway and rule sends the model its
pool serves; every one must see no failed request while the run moves its pool from preview to v1.
"""

import http.client
import json

import pytest
from migration_harness import RECAP, read_reports
from runner import run_playbook

from igw_sandbox import scenarios
from igw_sandbox.loadgen import LoadGenerator
from igw_sandbox.modelserver import POOL_HEADER
from igw_sandbox.waits import wait_until
from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.convert import ga_release_name

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


def _served_by(group, namespace, name):
    return "%s/%s/%s" % (group, namespace, name)


def _one_answer(address, host, headers, model):
    connection = http.client.HTTPConnection(address, 80, timeout=10)
    try:
        headers = {"Content-Type": "application/json", "Host": host, **headers}
        connection.request("POST", "/v1/completions", headers=headers,
                           body=json.dumps({"model": model, "prompt": "hi", "max_tokens": 5}))
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader(POOL_HEADER)
    except OSError:
        return 0, None
    finally:
        connection.close()


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
                   lambda: _one_answer(target["address"], target["host"], target["headers"], target["model"])
                   == expected, 90, interval=0.5)
    return clean_sandbox, targets


def _routes(kube):
    return dict(((namespace, name), kube.get_json("httproute", name, "-n", namespace)["spec"])
                for namespace, name in ROUTES)


def _as_migrated(spec, route_namespace):
    """The route spec the migration should leave: each preview backendRef replaced by its v1 pool, all else equal."""
    migrated = json.loads(json.dumps(spec))
    for rule in migrated.get("rules") or []:
        refs = []
        for ref in rule.get("backendRefs") or []:
            if ref.get("group") == api.ALPHA_GROUP:
                ref = dict(ref, group=api.GA_GROUP, name=ga_release_name(ref["name"]), weight=100)
            refs.append(ref)
        rule["backendRefs"] = refs
    return migrated


def _route_refs(spec):
    return [[(ref.get("group"), ref.get("kind"), ref.get("namespace"), ref["name"]) for ref in rule["backendRefs"]]
            for rule in spec["rules"]]


def test_zero_downtime_migrates_the_whole_estate_in_one_run_under_load_on_every_pool(estate, tmp_path):
    sandbox, targets = estate
    kube = sandbox.kube()
    routes_before = _routes(kube)
    env = sandbox.env
    run_vars = {"migration_kubeconfig": sandbox.kubeconfig, "migration_helm_binary": sandbox.helm,
                "migration_gie_download_url": env["GIE_DOWNLOAD_URL"],
                "migration_chart_registry": env["GIE_CHART_REGISTRY"],
                "migration_accept_model_name_changes": True, "migration_pause_seconds": 0,
                "migration_backup_dest": str(tmp_path / "backups"), "report_dir": str(tmp_path / "reports")}

    generators = [LoadGenerator(url="http://%s:80/v1/completions" % target["address"], rate=RATE_PER_TARGET,
                                duration=LOAD_MAX_SECONDS, max_requests=RATE_PER_TARGET * LOAD_MAX_SECONDS,
                                model=target["model"], summary_path=tmp_path / ("load-%d.json" % i),
                                headers=dict(target["headers"], Host=target["host"]), workers=4).start()
                  for i, target in enumerate(targets)]
    try:
        run = run_playbook(PLAYBOOK, sandbox.kubeconfig, run_vars, timeout=1500)
    finally:
        summaries = [generator.stop() for generator in generators]
    assert run.returncode == 0, run.stdout[-8000:]

    for target, summary in zip(targets, summaries):
        where = "%(host)s %(headers)s through %(gateway)s (pool %(namespace)s/%(pool)s)" % target
        assert summary["sent"] > 0 and summary["failed"] == 0, (where, summary)
        preview = _served_by(api.ALPHA_GROUP, target["namespace"], target["pool"])
        v1 = _served_by(api.GA_GROUP, target["namespace"], ga_release_name(target["pool"]))
        assert set(summary["per_pool"]) == {preview, v1}, (where, summary["per_pool"])
        assert _one_answer(target["address"], target["host"], target["headers"], target["model"]) == (200, v1), where

    # No preview object, reference or CRD is left; every rule that reached a preview pool reaches its v1 pool, and
    # the rest of each route is as it was.
    for crd in (api.ALPHA_POOL.crd_name, api.INFERENCE_MODEL.crd_name):
        assert kube.kubectl("get", "crd", crd, check=False).returncode != 0, crd + " is left"
    routes_after = _routes(kube)
    for (namespace, name), spec in routes_before.items():
        assert _route_refs(routes_after[(namespace, name)]) == _route_refs(_as_migrated(spec, namespace)), name
        assert dict(routes_after[(namespace, name)], rules=None) == dict(spec, rules=None), name
        assert [dict(rule, backendRefs=None) for rule in routes_after[(namespace, name)]["rules"]] == [
            dict(rule, backendRefs=None) for rule in spec["rules"]], name
    grant = kube.get_json("referencegrant", GRANT[1], "-n", GRANT[0])
    assert grant["spec"]["to"] == [{"group": api.GA_GROUP, "kind": "InferencePool"}]

    (report,) = read_reports(tmp_path / "reports")
    assert report["outcome"] == "succeeded"
    assert sorted(report["pools_migrated"]) == sorted("%s/%s" % (p["namespace"], p["name"])
                                                      for p in scenarios.load("estate")["record"]["pools"])
    probed = [row for gate in report["gates"] for row in (gate.get("probe") or {}).get("targets") or []]
    assert len(set(row["name"] for row in probed)) >= 6, [row["name"] for row in probed]

    again = run_playbook(PLAYBOOK, sandbox.kubeconfig, run_vars, timeout=900)
    assert again.returncode == 0, again.stdout[-6000:]
    assert RECAP.search(again.stdout).group(2) == "0", again.stdout[-6000:]
    assert [r["outcome"] for r in read_reports(tmp_path / "reports")] == ["succeeded", "succeeded"]
    assert _routes(kube) == routes_after


def test_simple_migrates_the_whole_estate_and_reports_the_downtime_of_every_pool(estate, tmp_path):
    sandbox, targets = estate
    kube = sandbox.kube()
    env = sandbox.env
    run = run_playbook("playbooks/simple.yml", sandbox.kubeconfig, {
        "migration_kubeconfig": sandbox.kubeconfig, "migration_helm_binary": sandbox.helm,
        "migration_gie_download_url": env["GIE_DOWNLOAD_URL"], "migration_chart_registry": env["GIE_CHART_REGISTRY"],
        "migration_accept_model_name_changes": True, "migration_backup_dest": str(tmp_path / "backups"),
        "report_dir": str(tmp_path / "reports")}, timeout=1500)
    assert run.returncode == 0, run.stdout[-8000:]

    for target in targets:
        v1 = _served_by(api.GA_GROUP, target["namespace"], ga_release_name(target["pool"]))
        assert _one_answer(target["address"], target["host"], target["headers"], target["model"]) == (200, v1), target
    (report,) = read_reports(tmp_path / "reports")
    pools = scenarios.load("estate")["record"]["pools"]
    by_pool = report["downtime_by_pool"]
    assert sorted(name.split(" (")[0] for name in by_pool) == sorted(
        "pool %s/%s" % (p["namespace"], p["name"]) for p in pools), by_pool
    assert all(0 < seconds <= report["downtime_seconds"] for seconds in by_pool.values()), report
    assert max(by_pool.values()) == pytest.approx(report["downtime_seconds"], abs=2.0), report
    assert kube.get_json("referencegrant", GRANT[1], "-n", GRANT[0])["spec"]["to"] == [
        {"group": api.GA_GROUP, "kind": "InferencePool"}]
