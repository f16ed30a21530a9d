"""Bad inputs are refused before the first write, by name, and leave the cluster as it was.

Each row runs a playbook (or one module task) on alpha-basic with one bad input and proves: the
run fails; its message names the variable, the bad value and the fix, says "Nothing was changed."
and never dumps a role's argument spec; every object of the cluster keeps its resourceVersion; and
no backup directory was created. The rows only read the cluster, so they share one seeded sandbox.

A row's bad variables may be a function of the row's `Given` (its scratch directory and a whole
backup of the sandbox), for inputs that are files: a backup made incomplete, one of another cluster.
"""

import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import yaml
from migration_harness import ALPHA_POOL, ALPHA_SERVED_BY, NS, ROUTE, ClusterView, answer_of
from runner import run_playbook, run_task

from igw_sandbox.waits import wait_until

ZERO_DOWNTIME = "playbooks/zero_downtime.yml"
SIMPLE = "playbooks/simple.yml"
ROLLBACK = "playbooks/rollback.yml"
DETECT = "playbooks/detect.yml"
VERIFY = "playbooks/verify.yml"
RESTORE_MODULE = "inference_gateway.migration.migration_restore"
BACKUP_MODULE = "inference_gateway.migration.migration_backup"
TRAFFIC_SPLIT_MODULE = "inference_gateway.migration.traffic_split"
RUN_TIMEOUT = 600
NOTHING_CHANGED = "Nothing was changed."
# Not the UID of the sandbox's kube-system namespace, which the API server made up at random.
ANOTHER_CLUSTER = "00000000-0000-4000-8000-000000000000"
POOL_FILE = "inferencepools.inference.networking.x-k8s.io/default_%s.yaml" % ALPHA_POOL
PREVIEW_BACKEND = {"group": "inference.networking.x-k8s.io", "kind": "InferencePool", "name": ALPHA_POOL}

Row = namedtuple("Row", "id target bad_vars says")
Given = namedtuple("Given", "tmp_path backup")


def _under_a_file(given):
    # The tests run as root, whom permission bits do not stop: nobody creates a directory under a regular file.
    (given.tmp_path / "afile").write_text("")
    return {"migration_backup_dest": str(given.tmp_path / "afile" / "backups")}


def _backup_copy(given, name="20260301T123005Z"):
    copy = given.tmp_path / "given" / name
    shutil.copytree(given.backup, copy)
    return copy


def _incomplete_backup(given):
    copy = _backup_copy(given)
    (copy / POOL_FILE).unlink()
    return {"rollback_backup_path": str(copy)}


def _unfinished_backup(given):
    return {"rollback_backup_path": str(_backup_copy(given, "20260301T123005Z.partial"))}


def _another_clusters_backup(given):
    copy = _backup_copy(given)
    index = yaml.safe_load((copy / "index.yaml").read_text())
    index["cluster"]["kube_system_uid"] = ANOTHER_CLUSTER
    (copy / "index.yaml").write_text(yaml.safe_dump(index))
    return {"rollback_backup_path": str(copy)}


def _whole_backup(given):
    return {"rollback_backup_path": str(_backup_copy(given))}


def _two_hosts_one_cluster(given):
    inventory = given.tmp_path / "fleet.yml"
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
             for name in ("cluster-a", "cluster-b")}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    # migration_kubeconfig, which every row passes with -e, overrides each host's own.
    return {"migration_hosts": "all", "inventory": str(inventory)}


ROWS = [
    # migration_release
    Row("unknown-release", ZERO_DOWNTIME, {"migration_release": "v9.9.9"},
        ["migration_release 'v9.9.9' is not a GIE release this collection knows", "Set it to one of v1.0.0,", "v1.5.0"]),
    Row("unknown-release-simple", SIMPLE, {"migration_release": "v9.9.9"},
        ["migration_release 'v9.9.9' is not a GIE release this collection knows"]),
    Row("release-after-the-epp-moved", ZERO_DOWNTIME, {"migration_release": "v1.6.0"},
        ["migration_release v1.6.0 is not supported", "llm-d-router", "Set migration_release to v1.5.0"]),
    # migration_step_weights, migration_pause_seconds
    Row("step-weight-out-of-range", ZERO_DOWNTIME, {"migration_step_weights": [50, 120]},
        ["migration_step_weights [50, 120]", "step weight 120 is not a whole percentage from 1 to 100"]),
    Row("step-weights-not-increasing", ZERO_DOWNTIME, {"migration_step_weights": [100, 50]},
        ["migration_step_weights [100, 50]", "must strictly increase"]),
    Row("step-weights-empty", ZERO_DOWNTIME, {"migration_step_weights": []},
        ["migration_step_weights []: step weights are empty", "ending with 100"]),
    Row("pause-seconds-negative", ZERO_DOWNTIME, {"migration_pause_seconds": -5},
        ["migration_pause_seconds -5 is not a whole number of seconds from 0 up"]),
    # the connection
    Row("kubeconfig-missing", ZERO_DOWNTIME, {"migration_kubeconfig": "/nonexistent/cluster.kubeconfig"},
        ["migration_kubeconfig names /nonexistent/cluster.kubeconfig, which does not exist",
         "Give the path of this cluster's kubeconfig"]),
    Row("context-unknown", ZERO_DOWNTIME, {"migration_context": "gke_nowhere"},
        ["migration_context 'gke_nowhere' is not a context of", "contexts there:", "Set migration_context to one of"]),
    Row("context-unknown-detect", DETECT, {"migration_context": "gke_nowhere"},
        ["migration_context 'gke_nowhere' is not a context of", "Set migration_context to one of"]),
    # conflicting variables: -e migration_kubeconfig overrides every host's, so both hosts reach one cluster
    Row("hosts-share-one-cluster", SIMPLE, _two_hosts_one_cluster,
        ["migration_kubeconfig and migration_context send hosts cluster-a, cluster-b to the same cluster",
         "Give each host its own migration_kubeconfig or migration_context in the inventory"]),
    # modes
    Row("mode-unknown", SIMPLE, {"migration_mode": "kubectl"},
        ["migration_mode 'kubectl' is not one of helm, manifests", "use helm"]),
    Row("pool-status-mode-unknown", ZERO_DOWNTIME, {"verify_pool_status_mode": "strictest"},
        ["verify_pool_status_mode 'strictest' is not one of strict, tolerant", "use tolerant"]),
    Row("pool-status-mode-unknown-verify", VERIFY, {"verify_pool_status_mode": "strictest"},
        ["verify_pool_status_mode 'strictest' is not one of strict, tolerant", "use tolerant"]),
    # migration_pools
    Row("pool-malformed", ZERO_DOWNTIME, {"migration_pools": [ALPHA_POOL]},
        ["migration_pools entry '%s'" % ALPHA_POOL, "must be written namespace/name (for example default/my-pool)"]),
    Row("pools-not-a-list", SIMPLE, {"migration_pools": "default/" + ALPHA_POOL},
        ["migration_pools 'default/%s' is not a list" % ALPHA_POOL, "give the preview pools as a list of namespace/name"]),
    Row("pool-does-not-exist", ZERO_DOWNTIME, {"migration_pools": ["default/no-such-pool"]},
        ["migration_pools entry 'default/no-such-pool' names no preview InferencePool of this cluster",
         "(its preview pools: default/%s)" % ALPHA_POOL, "Set migration_pools to some of them"]),
    Row("pool-in-wrong-namespace", SIMPLE, {"migration_pools": ["kube-system/" + ALPHA_POOL]},
        ["migration_pools entry 'kube-system/%s' names no preview InferencePool" % ALPHA_POOL,
         "a preview pool of that name is in default: write default/%s" % ALPHA_POOL]),
    # the Gateway and the probe's listener
    Row("gateway-unknown", ZERO_DOWNTIME, {"migration_gateway_name": "no-such-gateway"},
        ["Gateway default/no-such-gateway is missing", "not found", "set migration_gateway_name"]),
    Row("probe-listener-unknown", ZERO_DOWNTIME, {"verify_probe_listener": "no-such-listener"},
        ["verify_probe_listener 'no-such-listener' is no listener of Gateway default/inference-gateway",
         "(its listeners: http)", "Set verify_probe_listener (role variable preflight_probe_listener) to a listener of every "
         "Gateway in front of the pools"]),
    # acknowledgements
    Row("accept-managed-unknown-manager", SIMPLE, {"migration_accept_managed_objects": ["argo"]},
        ["migration_accept_managed_objects names argo, which is no manager the collection knows", "argocd, flux, owner"]),
    Row("accept-model-name-changes-not-a-bool", ZERO_DOWNTIME, {"migration_accept_model_name_changes": "maybe"},
        ["migration_accept_model_name_changes 'maybe' is neither true nor false", "set it to true or false"]),
    # backups
    Row("backup-dest-under-a-file", ZERO_DOWNTIME, _under_a_file,
        ["migration_backup_dest '", "/afile/backups' cannot hold backups", "/afile is a file, not a directory",
         "Set migration_backup_dest to a directory this user can write to"]),
    Row("rollback-backup-path-unset", ROLLBACK, {},
        ["rollback_backup_path is not set. Set rollback_backup_path to the backup directory"]),
    Row("rollback-backup-does-not-exist", ROLLBACK, {"rollback_backup_path": "/nonexistent/backups/20260301T123005Z"},
        ["rollback_backup_path '/nonexistent/backups/20260301T123005Z'", "does not exist",
         "Set rollback_backup_path to a whole backup directory"]),
    Row("rollback-backup-incomplete", ROLLBACK, _incomplete_backup,
        ["is incomplete: index.yaml lists %s, which is missing" % POOL_FILE,
         "Set rollback_backup_path to a whole backup directory"]),
    Row("rollback-backup-unfinished", ROLLBACK, _unfinished_backup,
        ["20260301T123005Z.partial is a backup that was never finished", "not a .partial one"]),
    Row("rollback-backup-of-another-cluster", ROLLBACK, _another_clusters_backup,
        ["was written on another cluster (kube-system namespace uid %s" % ANOTHER_CLUSTER,
         "than the one connected to (kube-system namespace uid ",
         "Point migration_kubeconfig and migration_context at the cluster the backup came from"]),
    Row("rollback-probe-retries-negative", ROLLBACK, lambda given: dict(_whole_backup(given), rollback_probe_retries=-1),
        ["rollback_probe_retries -1 is not a whole number from 1 up", "give a positive number of tries"]),
    # module tasks, as a playbook of the operator's own runs them
    Row("restore-module-backup-of-another-cluster", RESTORE_MODULE,
        lambda given: {"path": _another_clusters_backup(given)["rollback_backup_path"]},
        ["was written on another cluster (kube-system namespace uid %s" % ANOTHER_CLUSTER,
         "give rollback_backup_path a backup of this cluster"]),
    Row("backup-module-dest-under-a-file", BACKUP_MODULE,
        lambda given: {"dest": _under_a_file(given)["migration_backup_dest"]},
        ["cannot write a backup under ", "/afile/backups (", "give dest (migration_backup_dest in the playbooks) a "
         "directory this user can write to"]),
    Row("traffic-split-weight-out-of-range", TRAFFIC_SPLIT_MODULE,
        {"namespace": NS, "routes": [ROUTE], "backends": [dict(PREVIEW_BACKEND, weight=-1)]},
        ["traffic_split refused", "backends[0] (%s): weight -1 is not an integer from 0 to 1000000" % ALPHA_POOL,
         "give a whole number in that range"]),
    Row("traffic-split-route-unknown", TRAFFIC_SPLIT_MODULE,
        {"namespace": NS, "routes": ["no-such-route"], "backends": [dict(PREVIEW_BACKEND, weight=100)]},
        ["HTTPRoute %s/no-such-route does not exist; fix the routes option or create the route" % NS]),
]


@pytest.fixture(scope="module")
def seeded_once(sandbox):
    sandbox.up()
    sandbox.reset()
    sandbox.seed("alpha-basic")
    wait_until("the preview pool to answer", lambda: answer_of(sandbox) == (200, ALPHA_SERVED_BY), 60, interval=0.5)
    return sandbox


@pytest.fixture(scope="module")
def whole_backup(seeded_once, tmp_path_factory):
    """A backup of the seeded sandbox, as the backup role writes one; the rollback rows get copies of it."""
    written = run_task("inference_gateway.migration.migration_backup",
                       {"dest": str(tmp_path_factory.mktemp("whole-backup"))}, seeded_once.kubeconfig)
    assert not written.get("failed") and (Path(written["path"]) / POOL_FILE).is_file(), written
    return Path(written["path"])


def _refusal_text(target, kubeconfig, extra):
    """What the operator reads of the failed run: a playbook's output, or a module task's message."""
    if target.endswith(".yml"):
        inventory = extra.pop("inventory", None)
        run = run_playbook(target, kubeconfig, extra, timeout=RUN_TIMEOUT, inventory=inventory)
        assert run.returncode != 0, run.stdout[-4000:]
        return run.stdout
    args = dict((key, value) for key, value in extra.items() if not key.startswith(("migration_", "report_")))
    result = run_task(target, args, kubeconfig, timeout=RUN_TIMEOUT)
    assert result.get("failed"), result
    return str(result.get("msg")) + "\n" + "\n".join(str(value) for key, value in result.items() if key != "msg")


@pytest.mark.parametrize("target, bad_vars, says", [row[1:] for row in ROWS], ids=[row.id for row in ROWS])
def test_a_bad_input_is_refused_by_name_and_the_cluster_is_unchanged(seeded_once, whole_backup, tmp_path, target,
                                                                     bad_vars, says):
    view = ClusterView(seeded_once.kubeconfig)
    before = view.resource_versions()
    bad = bad_vars(Given(tmp_path, whole_backup)) if callable(bad_vars) else bad_vars
    extra = {"migration_kubeconfig": seeded_once.kubeconfig, "migration_helm_binary": seeded_once.helm,
             "migration_backup_dest": str(tmp_path / "backups"), "report_dir": str(tmp_path / "reports"), **bad}
    output = _refusal_text(target, seeded_once.kubeconfig, extra)
    for words in says:
        assert words in output, (words, output[-4000:])
    assert NOTHING_CHANGED in output, output[-4000:]
    assert "argument_spec" not in output
    assert view.resource_versions() == before
    assert not (tmp_path / "backups").exists()
