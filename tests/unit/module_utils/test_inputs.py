"""The playbooks' inputs: each problem named by the migration_* variable, the bad value and the fix."""

import datetime
import os

import pytest
import yaml

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, inputs, releases
from ansible_collections.inference_gateway.migration.plugins.module_utils.backup_files import INDEX_FILE, write_backup

GOOD = {"release": "v1.0.0", "mode": "helm", "pools": [], "step_weights": [50, 100], "pause_seconds": 30,
        "gateway_name": "inference-gateway", "gateway_namespace": "default", "accept_managed_objects": False,
        "accept_model_name_changes": False, "pool_status_mode": None, "fleet": [["localhost", None, None]],
        "kubeconfig": None, "context": None, "env": {"K8S_AUTH_HOST": "https://127.0.0.1:6443"}}


@pytest.fixture(autouse=True)
def _writable_backup_dest(tmp_path, monkeypatch):
    monkeypatch.setitem(GOOD, "backup_dest", str(tmp_path / "backups"))


def _errors(path="zero_downtime", **changes):
    return inputs.migration_input_errors(dict(GOOD, **changes), path)


def test_good_inputs_have_no_problem():
    assert _errors() == []
    assert _errors("simple") == []


@pytest.mark.parametrize("release", releases.V1_RELEASES)
def test_every_known_release_is_accepted(release):
    assert _errors(release=release) == []


@pytest.mark.parametrize("release", ["v9.9.9", "1.0.0", "v1.0", "latest", "", None, 1])
def test_an_unknown_release_names_the_variable_and_the_known_ones(release):
    [message] = _errors(release=release)
    assert message.startswith("migration_release %r is not a GIE release" % (release,))
    assert "v1.0.0" in message and releases.V1_RELEASES[-1] in message


@pytest.mark.parametrize("release", api.GIE_RELEASES_WITHOUT_EPP)
def test_a_release_after_the_epp_moved_is_refused_with_the_reason(release):
    [message] = _errors(release=release)
    assert "migration_release %s is not supported" % release in message
    assert "llm-d-router" in message and "llm-d.ai" in message and releases.V1_RELEASES[-1] in message


@pytest.mark.parametrize("weights, says", [
    ([], "empty"),
    ([50, 120], "120 is not a whole percentage"),
    ([0, 100], "0 is not a whole percentage"),
    ([100, 50], "strictly increase"),
    ([50, 50, 100], "strictly increase"),
    ([10, 50], "last step weight must be 100"),
    (["fifty", 100], "'fifty' is not a whole percentage"),
    ({"first": 50}, "is not a list"),
])
def test_bad_step_weights_name_the_variable_the_value_and_the_rule(weights, says):
    [message] = _errors(step_weights=weights)
    assert message.startswith("migration_step_weights ")
    assert says in message


@pytest.mark.parametrize("weights, pause", [("50,100", "5"), (["50", "100"], 5)])
def test_values_given_as_strings_in_extra_vars_read_as_the_roles_read_them(weights, pause):
    assert _errors(step_weights=weights, pause_seconds=pause) == []


def test_step_weights_and_pause_are_only_checked_on_the_zero_downtime_path():
    assert _errors("simple", step_weights=[100, 50], pause_seconds=-1) == []
    assert _errors(pause_seconds=-1) == ["migration_pause_seconds -1 is not a whole number of seconds from 0 up."]
    assert _errors(pause_seconds="soon")[0].startswith("migration_pause_seconds 'soon' is not a whole number")
    assert _errors(pause_seconds=True)[0].startswith("migration_pause_seconds True is not a whole number")


def test_mode_and_pool_names():
    assert _errors(mode="kubectl")[0].startswith("migration_mode 'kubectl' is not one of helm, manifests")
    [message] = _errors(pools=["default/pool", "pool-without-namespace"])
    assert message.startswith("migration_pools entry 'pool-without-namespace'") and "namespace/name" in message
    assert _errors(pools="default/pool")[0].startswith("migration_pools 'default/pool' is not a list")


@pytest.mark.parametrize("accept", [None, True, False, "true", "false", [], ["argocd"], ["argocd", "flux", "owner"],
                                    "argocd,flux"])
def test_accept_managed_objects_takes_a_bool_or_a_list_of_known_managers(accept):
    assert _errors(accept_managed_objects=accept) == []


def test_accept_managed_objects_names_an_unknown_manager_and_the_known_ones():
    [message] = _errors("simple", accept_managed_objects=["argo", "flux"])
    assert message.startswith("migration_accept_managed_objects names argo, which is no manager")
    assert "argocd, flux, owner" in message
    assert _errors(accept_managed_objects=3)[0].startswith("migration_accept_managed_objects 3 is neither")


def _kubeconfig(path, *contexts):
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                    "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts]}))
    return str(path)


def test_a_kubeconfig_that_does_not_exist_is_named_with_its_variable(tmp_path):
    missing = str(tmp_path / "nope.kubeconfig")
    [message] = inputs.kubeconfig_errors(missing, None, {})
    assert message.startswith("migration_kubeconfig names %s, which does not exist" % missing)
    [message] = inputs.kubeconfig_errors(None, None, {"K8S_AUTH_KUBECONFIG": missing})
    assert message.startswith("K8S_AUTH_KUBECONFIG names %s" % missing)
    [message] = inputs.kubeconfig_errors(None, None, {"KUBECONFIG": missing})
    assert message.startswith("KUBECONFIG names %s" % missing)


def test_an_unknown_context_lists_the_contexts_that_exist(tmp_path):
    path = _kubeconfig(tmp_path / "config", "gke_a", "gke_b")
    assert inputs.kubeconfig_errors(path, "gke_b", {}) == []
    [message] = inputs.kubeconfig_errors(path, "gke_c", {})
    assert message.startswith("migration_context 'gke_c' is not a context of %s (contexts there: gke_a, gke_b)" % path)


def test_contexts_are_read_from_every_file_of_a_kubeconfig_list(tmp_path):
    first = _kubeconfig(tmp_path / "one", "gke_a")
    second = _kubeconfig(tmp_path / "two", "gke_b")
    assert inputs.kubeconfig_errors(None, "gke_b", {"KUBECONFIG": first + ":" + second}) == []


def test_host_credentials_need_no_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert inputs.kubeconfig_errors(None, None, {"K8S_AUTH_HOST": "https://127.0.0.1:6443"}) == []
    # Without anything given the client's own "no configuration found" is the right message.
    assert inputs.kubeconfig_errors(None, None, {}) == []


def test_every_problem_is_reported_at_once(tmp_path):
    problems = _errors(release="v9.9.9", step_weights=[100, 50], kubeconfig=str(tmp_path / "nope"))
    assert [p.split(" ")[0] for p in problems] == ["migration_kubeconfig", "migration_release", "migration_step_weights"]


@pytest.mark.parametrize("accept", [True, False, "true", "no", 0])
def test_accept_model_name_changes_takes_what_ansible_reads_as_a_boolean(accept):
    assert _errors("simple", accept_model_name_changes=accept) == []


def test_accept_model_name_changes_that_is_no_boolean_is_named():
    [message] = _errors(accept_model_name_changes="maybe")
    assert message.startswith("migration_accept_model_name_changes 'maybe' is neither true nor false")
    assert "-e migration_accept_model_name_changes=true" in message


@pytest.mark.parametrize("path", ["zero_downtime", "simple", "verify", "rollback"])
def test_an_unknown_pool_status_mode_is_named_on_every_path_that_runs_the_gates(path):
    problems = _errors(path, pool_status_mode="strictest")
    assert any(p.startswith("verify_pool_status_mode 'strictest' is not one of strict, tolerant") for p in problems)


@pytest.mark.parametrize("name, namespace, variable", [
    (["inference-gateway"], "default", "migration_gateway_name"),
    ("Inference_Gateway", "default", "migration_gateway_name"),
    ("inference-gateway", "team/a", "migration_gateway_namespace"),
    ("inference-gateway", "", "migration_gateway_namespace"),
])
def test_a_gateway_that_is_no_object_name_is_named(name, namespace, variable):
    [message] = _errors(gateway_name=name, gateway_namespace=namespace)
    assert message.startswith(variable + " ") and "for example" in message


def test_a_backup_dest_under_a_file_is_named_with_the_file(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    dest = str(tmp_path / "afile" / "backups")
    [message] = _errors(backup_dest=dest)
    assert message.startswith("migration_backup_dest %r cannot hold backups: %s is a file" % (dest, tmp_path / "afile"))
    assert "Set migration_backup_dest to a directory" in message


def test_a_backup_dest_that_does_not_exist_yet_is_fine(tmp_path):
    assert _errors(backup_dest=str(tmp_path / "a" / "b" / "c")) == []
    assert _errors(backup_dest="")[0].startswith("migration_backup_dest '' is not a directory path")


def test_a_backup_dest_the_user_may_not_write_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    [message] = _errors(backup_dest=str(tmp_path / "backups"))
    assert "this user may not write to %s" % tmp_path in message


def test_hosts_that_reach_the_same_cluster_are_named():
    fleet = [["cluster-a", "/k/one", None], ["cluster-b", "/k/one", None], ["cluster-c", "/k/one", "other"]]
    [message] = _errors("simple", fleet=fleet)
    assert message.startswith("migration_kubeconfig and migration_context send hosts cluster-a, cluster-b to the "
                              "same cluster (kubeconfig /k/one, context the current one)")
    assert _errors(fleet=[["a", None, "gke_a"], ["b", None, "gke_b"]]) == []


def _backup(tmp_path):
    written = write_backup(str(tmp_path / "backups"), [(api.ALPHA_POOL, {
        "apiVersion": api.ALPHA_POOL.api_version, "kind": api.ALPHA_POOL.kind,
        "metadata": {"name": "pool", "namespace": "default"}, "spec": {}})], "migration_backup", {},
        now=datetime.datetime(2026, 3, 1, 12, 30, 5))
    return written["path"]


def _rollback_errors(**changes):
    return inputs.migration_input_errors(dict(GOOD, **changes), "rollback")


def test_a_whole_backup_rolls_back(tmp_path):
    assert _rollback_errors(backup_path=_backup(tmp_path), probe_retries="5", route_wait_timeout=60,
                            endpoint_url="http://127.0.0.1/v1/completions") == []


def test_rollback_without_a_backup_path_says_to_set_it():
    [message] = _rollback_errors(backup_path=None)
    assert message.startswith("rollback_backup_path is not set. Set rollback_backup_path")


def test_a_backup_that_is_not_whole_is_named_with_what_is_missing(tmp_path):
    path = _backup(tmp_path)
    [listed] = [f for f in os.listdir(path) if f != INDEX_FILE]
    object_file = os.path.join(listed, os.listdir(os.path.join(path, listed))[0])
    os.remove(os.path.join(path, object_file))
    [message] = _rollback_errors(backup_path=path)
    assert message.startswith("rollback_backup_path %r: %s is incomplete: index.yaml lists %s, which is missing"
                              % (path, path, object_file))
    assert "Set rollback_backup_path to a whole backup directory" in message
    os.remove(os.path.join(path, INDEX_FILE))
    assert "has no index.yaml" in _rollback_errors(backup_path=path)[0]
    assert "does not exist" in _rollback_errors(backup_path=str(tmp_path / "nowhere"))[0]
    os.rename(path, path + ".partial")
    assert "was never finished" in _rollback_errors(backup_path=path + ".partial")[0]


@pytest.mark.parametrize("changes, says", [
    ({"probe_retries": -1}, "rollback_probe_retries -1 is not a whole number from 1 up"),
    ({"route_wait_timeout": "soon"}, "rollback_route_wait_timeout 'soon' is not a whole number from 1 up"),
    ({"endpoint_url": "127.0.0.1/v1/completions"}, "rollback_endpoint_url '127.0.0.1/v1/completions' is not an http"),
])
def test_rollback_probe_settings_that_cannot_hold_are_named(tmp_path, changes, says):
    [message] = _rollback_errors(backup_path=_backup(tmp_path), **changes)
    assert message.startswith(says)


def _detected(*pools):
    return {"alpha_pools": [{"namespace": p.split("/")[0], "name": p.split("/")[1]} for p in pools]}


def test_a_wanted_pool_in_another_namespace_is_named_with_the_entry_meant():
    detect = _detected("default/pool", "team-a/other")
    assert inputs.pool_selection_errors(detect, ["default/pool"]) == []
    assert inputs.pool_selection_errors(detect, []) == []
    [message] = inputs.pool_selection_errors(detect, ["kube-system/pool"])
    assert message.startswith("migration_pools entry 'kube-system/pool' names no preview InferencePool of this cluster "
                              "(its preview pools: default/pool, team-a/other); a preview pool of that name is in "
                              "default: write default/pool.")
    [message] = inputs.pool_selection_errors(detect, ["default/missing"])
    assert "write" not in message and "leave it unset to migrate every pool" in message
