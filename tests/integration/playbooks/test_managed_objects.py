"""Objects that Argo CD, Flux or an owner also manages are refused in preflight until acknowledged, and a
step that such a manager puts back anyway fails its gate.

A route Argo CD tracks, or a preview pool another object owns, would be put back by that manager
after the migration changed it. Each refusal test proves the refusal names the object and the manager,
and that the cluster is as it was (every resourceVersion, no backup). The self-heal test proves that a
writer the migration could not see coming, which resets the route to its Git version during phase 2,
fails the step's gate naming that writer, and that the rollback keeps every request served.
"""

import threading

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from migration_harness import ALPHA_POOL, NS, ROUTE, ClusterView, read_reports
from runner import run_playbook

from ansible_collections.inference_gateway.migration.plugins.module_utils import api

PLAYBOOK = "playbooks/zero_downtime.yml"
PLAYBOOK_TIMEOUT = 900
WATCH_TIMEOUT = 600
WATCH_INTERVAL = 0.1
# Argo CD's self-heal acts within seconds of a change; this stand-in looks every second.
SELF_HEAL_INTERVAL = 1
SELF_HEAL_MANAGER = "argocd-controller"
TRACKING_ID = "inference:%s/HTTPRoute:%s/%s" % (api.GATEWAY_GROUP, NS, ROUTE)


def _custom(sandbox):
    return client.CustomObjectsApi(config.new_client_from_config(config_file=sandbox.kubeconfig))


def _refused(run, view, before, tmp_path, *says):
    assert run.returncode != 0, run.stdout[-6000:]
    for words in says:
        assert words in run.stdout, (words, run.stdout[-6000:])
    assert "migration_accept_managed_objects" in run.stdout and "Nothing was changed." in run.stdout
    assert view.resource_versions() == before
    assert not (tmp_path / "backups").exists()


def test_a_route_argo_cd_tracks_is_refused_until_argo_cd_is_acknowledged(serving, migration_vars, tmp_path):
    route = api.HTTP_ROUTE
    _custom(serving).patch_namespaced_custom_object(
        route.group, route.version, NS, route.plural, ROUTE,
        {"metadata": {"labels": {api.ARGOCD_INSTANCE_LABEL: "inference"},
                      "annotations": {api.ARGOCD_TRACKING_ANNOTATION: TRACKING_ID}}})
    view = ClusterView(serving.kubeconfig)
    before = view.resource_versions()
    reports = tmp_path / "reports"
    refused = run_playbook(PLAYBOOK, serving.kubeconfig, {**migration_vars, "report_dir": str(reports)}, timeout=900)
    _refused(refused, view, before, tmp_path, "HTTPRoute %s/%s is managed by Argo CD Application inference" % (NS, ROUTE),
             "sync", "Git")
    # alpha-basic's route was written with kubectl apply naming the preview pool: the report says to change its source.
    [report] = read_reports(reports)
    assert report["outcome"] == "failed"
    assert [(a["kind"], a["name"], a["names"]) for a in report["last_applied"]
            if a["kind"] == "HTTPRoute"] == [("HTTPRoute", ROUTE, ["%s/%s" % (NS, ALPHA_POOL)])]
    markdown = sorted(reports.glob("migration-localhost-*.md"))[-1].read_text()
    assert "| HTTPRoute %s/%s | %s/%s |" % (NS, ROUTE, NS, ALPHA_POOL) in markdown

    # Acknowledging another manager is not enough; acknowledging Argo CD lets the run go on (a dry run here:
    # past every gate of preflight to the plan and the backup it would write).
    still = run_playbook(PLAYBOOK, serving.kubeconfig,
                         {**migration_vars, "migration_accept_managed_objects": ["flux"],
                          "report_dir": str(tmp_path / "reports-flux")}, check=True, timeout=900)
    assert still.returncode != 0 and "Argo CD Application inference" in still.stdout
    run = run_playbook(PLAYBOOK, serving.kubeconfig,
                       {**migration_vars, "migration_accept_managed_objects": ["argocd"],
                        "report_dir": str(tmp_path / "reports-argocd")}, check=True, timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr
    assert "Pools: %s/%s (phase not_started)" % (NS, ALPHA_POOL) in run.stdout
    assert ("HTTPRoute %s/%s was last written with kubectl apply naming preview pool %s/%s: change its source manifest"
            % (NS, ROUTE, NS, ALPHA_POOL)) in " ".join(run.stdout.split())
    assert view.resource_versions() == before


def test_a_preview_pool_owned_through_an_owner_reference_is_refused(serving, migration_vars, tmp_path):
    core = client.CoreV1Api(config.new_client_from_config(config_file=serving.kubeconfig))
    owner = core.create_namespaced_config_map(NS, {"metadata": {"name": "pool-owner"}})
    pool = api.ALPHA_POOL
    _custom(serving).patch_namespaced_custom_object(
        pool.group, pool.version, NS, pool.plural, ALPHA_POOL,
        {"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "pool-owner",
                                           "uid": owner.metadata.uid, "controller": True}]}})
    view = ClusterView(serving.kubeconfig)
    before = view.resource_versions()
    run = run_playbook(PLAYBOOK, serving.kubeconfig, {**migration_vars, "report_dir": str(tmp_path / "reports")},
                       timeout=900)
    _refused(run, view, before, tmp_path,
             "InferencePool %s/%s is managed by ConfigMap pool-owner (its controller) [owner]" % (NS, ALPHA_POOL),
             "migrate through ConfigMap pool-owner")


class SelfHeal:
    """Puts the route back to its Git version whenever it differs, as Argo CD's self-heal does, until stopped;
    writes with field manager SELF_HEAL_MANAGER."""

    def __init__(self, sandbox, git_spec):
        self.custom = _custom(sandbox)
        self.git_spec = git_spec
        self.reverts = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._heal, name="self-heal", daemon=True)

    def _heal(self):
        route = api.HTTP_ROUTE
        while not self.stopped.wait(SELF_HEAL_INTERVAL):
            live = self.custom.get_namespaced_custom_object(route.group, route.version, NS, route.plural, ROUTE)
            if live["spec"] == self.git_spec:
                continue
            try:
                self.custom.replace_namespaced_custom_object(route.group, route.version, NS, route.plural, ROUTE,
                                                             dict(live, spec=self.git_spec),
                                                             field_manager=SELF_HEAL_MANAGER)
                self.reverts += 1
            except ApiException as e:
                if e.status != 409:  # a conflict is tried again on the next look, as a controller would
                    raise

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(SELF_HEAL_INTERVAL * 10)


# When the writer strikes: while the step waits for the gateway to program the new weights (at once), or only
# later, during the pause before the gate (the step's weights were programmed, so only the gate can see it).
STRIKES = {
    "during-the-programming-wait": ({}, None),
    "before-the-gate": ({"migration_pause_seconds": 10}, "Phase 2 | Watch the new weights before the gates"),
}


@pytest.mark.parametrize("strike", sorted(STRIKES))
def test_a_step_that_gitops_self_heal_puts_back_fails_its_gate_naming_the_writer(
        strike, view, load, start_playbook, report_dir, serving):
    extra_vars, after_output = STRIKES[strike]
    git_spec = view.route()["spec"]
    run = start_playbook(PLAYBOOK, "self-healed", migration_step_weights=[25, 50, 100], **extra_vars)
    run.watch("the v1 pool getting 25 % of the traffic", lambda: view.v1_percent() == 25, WATCH_TIMEOUT,
              WATCH_INTERVAL)
    if after_output:
        run.watch("the step's pause", lambda: after_output in run.output, WATCH_TIMEOUT, WATCH_INTERVAL)
    with SelfHeal(serving, git_spec) as heal:
        assert run.wait(PLAYBOOK_TIMEOUT) != 0, run.tail()
        traffic = load.stop()

    assert heal.reverts >= 1
    (report,) = read_reports(report_dir)
    assert report["outcome"] == "rolled_back", report["error"]
    assert report["error"].startswith("Gate 'phase 2: 25 % on v1' failed at the step to 25 % on v1:"), report["error"]
    error = " ".join(report["error"].split())
    if after_output:
        assert "and send the traffic the migration wrote. Measured: HTTPRoute" in error, error
    else:
        assert "The weights written for v1 25 % did not stay: HTTPRoute" in error, error
    assert "HTTPRoute %s/%s was changed by another writer after the migration wrote it" % (NS, ROUTE) in error
    assert "last written by field manager %s (Update at " % SELF_HEAL_MANAGER in error
    assert "suspend the sync" in error
    # Back at 0 % on v1 the migration wants what Git has: the rollback's gate passes with the writer still active.
    assert report["gates"][-1]["name"] == "rollback: 0 % on v1" and report["gates"][-1]["passed"]
    assert view.v1_percent() == 0
    assert traffic["sent"] > 0 and traffic["failed"] == 0, traffic
