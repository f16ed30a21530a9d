"""Objects that Argo CD, Flux or an owner also manages are refused in preflight until acknowledged.

A route Argo CD tracks, or a preview pool another object owns, would be put back by that manager
after the migration changed it. Each test proves the refusal names the object and the manager, and
that the cluster is as it was (every resourceVersion, no backup).
"""

from kubernetes import client, config
from migration_harness import ALPHA_POOL, NS, ROUTE, ClusterView, read_reports
from runner import run_playbook

from ansible_collections.inference_gateway.migration.plugins.module_utils import api

PLAYBOOK = "playbooks/zero_downtime.yml"
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
