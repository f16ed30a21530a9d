"""What zero_downtime.yml refuses before its first write, and its check-mode dry run.

Each test starts from alpha-basic, runs the playbook, and proves the cluster is as
it was: the route at the same resourceVersion, no v1 pool, no objective, no backup.
"""

from kubernetes import client, config
from migration_harness import GA_POOL, NS
from runner import run_playbook

from ansible_collections.inference_gateway.migration.plugins.module_utils import api

PLAYBOOK = "playbooks/zero_downtime.yml"


def _unchanged(view, route_version):
    assert view.route()["metadata"]["resourceVersion"] == route_version
    assert not view.names(api.GA_POOL)
    assert api.INFERENCE_OBJECTIVE.crd_name not in view.crd_names()
    assert GA_POOL not in view.helm_releases()


def test_check_mode_shows_the_plan_and_changes_nothing(serving, view, migration_vars, tmp_path):
    before = view.route()["metadata"]["resourceVersion"]
    run = run_playbook(PLAYBOOK, serving.kubeconfig, {**migration_vars, "report_dir": str(tmp_path / "reports")},
                       check=True, diff=True, timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr
    assert "Pools: default/vllm-llama3-8b-instruct-preview (phase not_started)" in run.stdout
    assert "Traffic steps (v1 percent): 50 -> 100" in run.stdout
    _unchanged(view, before)
    assert not (tmp_path / "backups").exists()


def _grant_read_only(sandbox, user):
    rbac = client.RbacAuthorizationV1Api(config.new_client_from_config(config_file=sandbox.kubeconfig))
    rbac.create_cluster_role({"metadata": {"name": "read-everything"},
                              "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]})
    rbac.create_cluster_role_binding({"metadata": {"name": "read-everything"},
                                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                  "name": "read-everything"},
                                      "subjects": [{"kind": "User", "name": user,
                                                    "apiGroup": "rbac.authorization.k8s.io"}]})


def test_missing_permissions_are_named_before_the_first_write(serving, view, migration_vars, tmp_path):
    _grant_read_only(serving, "restricted-user")
    before = view.route()["metadata"]["resourceVersion"]
    run = run_playbook(PLAYBOOK, serving.kubeconfig,
                       {**migration_vars, "migration_kubeconfig": serving.restricted_kubeconfig,
                        "report_dir": str(tmp_path / "reports")}, timeout=900)
    assert run.returncode != 0
    assert "lack" in run.stdout and "update httproutes.%s in namespace %s" % (api.GATEWAY_GROUP, NS) in run.stdout
    assert "delete customresourcedefinitions.apiextensions.k8s.io cluster-wide" in run.stdout
    _unchanged(view, before)
    assert not (tmp_path / "backups").exists()


def test_a_model_that_needs_the_preview_rewrite_stops_preflight(serving, view, migration_vars, tmp_path):
    custom = client.CustomObjectsApi(config.new_client_from_config(config_file=serving.kubeconfig))
    model = api.INFERENCE_MODEL
    custom.patch_namespaced_custom_object(model.group, model.version, NS, model.plural, "food-review",
                                          {"spec": {"targetModels": [{"name": "food-review-v2", "weight": 100}]}})
    before = view.route()["metadata"]["resourceVersion"]
    run = run_playbook(PLAYBOOK, serving.kubeconfig,
                       {**migration_vars, "migration_accept_model_name_changes": False,
                        "report_dir": str(tmp_path / "reports")}, timeout=900)
    assert run.returncode != 0
    assert "default/food-review (model food-review -> food-review-v2:100)" in run.stdout
    assert "migration_accept_model_name_changes=true" in run.stdout
    _unchanged(view, before)
    assert not (tmp_path / "backups").exists()
