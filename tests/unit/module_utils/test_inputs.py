"""The playbooks' inputs: each problem named by the migration_* variable, the bad value and the fix."""

import pytest
import yaml

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, inputs

GOOD = {"release": "v1.0.0", "mode": "helm", "pools": [], "step_weights": [50, 100], "pause_seconds": 30,
        "kubeconfig": None, "context": None, "env": {"K8S_AUTH_HOST": "https://127.0.0.1:6443"}}


def _errors(path="zero_downtime", **changes):
    return inputs.migration_input_errors(dict(GOOD, **changes), path)


def test_good_inputs_have_no_problem():
    assert _errors() == []
    assert _errors("simple") == []


@pytest.mark.parametrize("release", api.GIE_V1_RELEASES)
def test_every_known_release_is_accepted(release):
    assert _errors(release=release) == []


@pytest.mark.parametrize("release", ["v9.9.9", "1.0.0", "v1.0", "latest", "", None, 1])
def test_an_unknown_release_names_the_variable_and_the_known_ones(release):
    [message] = _errors(release=release)
    assert message.startswith("migration_release %r is not a GIE release" % (release,))
    assert "v1.0.0" in message and api.GIE_V1_RELEASES[-1] in message


@pytest.mark.parametrize("release", api.GIE_RELEASES_WITHOUT_EPP)
def test_a_release_after_the_epp_moved_is_refused_with_the_reason(release):
    [message] = _errors(release=release)
    assert "migration_release %s is not supported" % release in message
    assert "llm-d-router" in message and "llm-d.ai" in message and api.GIE_V1_RELEASES[-1] in message


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
