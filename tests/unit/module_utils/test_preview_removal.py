"""preview_removal: the preview stacks of every pool are removed at once, then waited for once."""

import stat
import threading

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, helm, preview_removal
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from memory_cluster import MemoryCluster, crd

# A pool from the chart (release chat-preview owns the pool, its EPP and Service) and two from raw manifests.
CHART_POOL = {"namespace": "team-chat", "name": "chat", "helm_release": {"namespace": "team-chat", "name": "chat-preview"},
              "models": [{"name": "chat-assistant"}], "epp": {"deployment": "chat-epp", "service_found": True},
              "extension_ref": {"name": "chat-epp"}}
SEARCH_POOL = {"namespace": "team-search", "name": "search",
               "helm_release": {"namespace": "team-search", "name": "search-preview"},
               "models": [], "epp": {"deployment": "search-epp", "service_found": True},
               "extension_ref": {"name": "search-epp"}}
RAW_POOL = {"namespace": "platform", "name": "raw", "helm_release": None, "models": [{"name": "raw-model"}],
            "epp": {"deployment": "raw-epp", "service_found": True}, "extension_ref": {"name": "raw-epp"}}


def _owned_by(release):
    return {"annotations": {api.HELM_RELEASE_NAME_ANNOTATION: release["name"],
                            api.HELM_RELEASE_NAMESPACE_ANNOTATION: release["namespace"]}}


def _stack(pool):
    """The objects of one pool's preview stack, annotated as Helm's when a release owns the pool."""
    owner = _owned_by(pool["helm_release"]) if pool["helm_release"] else {}
    namespace = pool["namespace"]
    objects = [(api.INFERENCE_MODEL, {"metadata": {"name": m["name"], "namespace": namespace}})
               for m in pool["models"]]
    for rtype, name in ((api.DEPLOYMENT, pool["epp"]["deployment"]), (api.SERVICE, pool["extension_ref"]["name"]),
                        (api.ALPHA_POOL, pool["name"])):
        objects.append((rtype, {"metadata": dict(owner, name=name, namespace=namespace)}))
    if pool["helm_release"]:
        release = pool["helm_release"]
        objects.append((api.SECRET, {"type": api.HELM_RELEASE_SECRET_TYPE, "metadata": {
            "name": "sh.helm.release.v1.%s.v1" % release["name"], "namespace": release["namespace"],
            "labels": dict(api.HELM_RELEASE_OWNER_LABELS, **{api.HELM_RELEASE_NAME_LABEL: release["name"]})}}))
    return objects


def cluster_with(*pools):
    objects = [(api.CRD, crd(api.ALPHA_POOL)), (api.CRD, crd(api.INFERENCE_MODEL))]
    for pool in pools:
        objects += _stack(pool)
    return MemoryCluster(*objects)


class FakeHelm:
    """helm uninstall as Helm does it: deletes the objects its release annotates, then the release's record.
    ``together`` makes every uninstall wait for that many uninstalls to be running at once."""

    def __init__(self, cluster, together=1, failing=(), leaves=()):
        self.cluster = cluster
        self.barrier = threading.Barrier(together, timeout=5)
        self.failing = failing
        self.leaves = leaves
        self.uninstalled = []

    def __call__(self, release):
        self.barrier.wait()
        if release["name"] in self.failing:
            raise MigrationError("Error: uninstall: Release not loaded: timed out")
        for rtype, obj in self.owned[release["name"]]:
            if obj["metadata"]["name"] not in self.leaves:
                self.cluster.delete(rtype, obj["metadata"]["name"], obj["metadata"]["namespace"])
        self.uninstalled.append(release["name"])

    def knowing(self, *pools):
        self.owned = dict((p["helm_release"]["name"], [o for o in _stack(p) if o[0] != api.INFERENCE_MODEL])
                          for p in pools if p["helm_release"])
        return self


def test_every_release_is_uninstalled_at_once_and_the_objects_helm_does_not_own_are_deleted():
    cluster = cluster_with(CHART_POOL, SEARCH_POOL, RAW_POOL)
    fake = FakeHelm(cluster, together=2).knowing(CHART_POOL, SEARCH_POOL, RAW_POOL)
    result = preview_removal.remove_stacks(cluster, [CHART_POOL, SEARCH_POOL, RAW_POOL], fake, wait_timeout=0)
    assert sorted(fake.uninstalled) == ["chat-preview", "search-preview"]
    assert result["changed"]
    assert result["uninstalled"] == ["team-chat/chat-preview", "team-search/search-preview"]
    assert result["deleted"] == ["Deployment platform/raw-epp", "InferenceModel platform/raw-model",
                                 "InferenceModel team-chat/chat-assistant", "InferencePool platform/raw",
                                 "Service platform/raw-epp"]
    assert cluster.names(api.ALPHA_POOL) == [] and cluster.names(api.INFERENCE_MODEL) == []
    assert cluster.names(api.DEPLOYMENT) == [] and cluster.names(api.SECRET) == []
    assert result["diff"]["after"] == {"helm_releases": [], "objects": []}
    assert "InferencePool team-chat/chat" in result["diff"]["before"]["objects"]


def test_a_second_run_changes_nothing_and_uninstalls_nothing():
    cluster = cluster_with(CHART_POOL, RAW_POOL)
    preview_removal.remove_stacks(cluster, [CHART_POOL, RAW_POOL], FakeHelm(cluster).knowing(CHART_POOL), 0)
    writes = len(cluster.writes)
    again = FakeHelm(cluster).knowing(CHART_POOL)
    result = preview_removal.remove_stacks(cluster, [CHART_POOL, RAW_POOL], again, 0)
    assert not result["changed"] and result["uninstalled"] == [] and result["deleted"] == []
    assert again.uninstalled == [] and len(cluster.writes) == writes


def test_check_mode_removes_nothing_and_says_what_would_go():
    cluster = cluster_with(CHART_POOL, RAW_POOL)
    cluster.dry_run = True
    fake = FakeHelm(cluster).knowing(CHART_POOL)
    result = preview_removal.remove_stacks(cluster, [CHART_POOL, RAW_POOL], fake, 0)
    assert fake.uninstalled == [] and cluster.writes == []
    assert result["changed"] and result["uninstalled"] == ["team-chat/chat-preview"]
    assert "InferencePool platform/raw" in result["deleted"] and "InferencePool team-chat/chat" not in result["deleted"]


def test_a_failed_uninstall_is_named_and_the_other_stacks_are_still_removed():
    cluster = cluster_with(CHART_POOL, SEARCH_POOL, RAW_POOL)
    fake = FakeHelm(cluster, together=2, failing=("search-preview",)).knowing(CHART_POOL, SEARCH_POOL)
    with pytest.raises(MigrationError) as failed:
        preview_removal.remove_stacks(cluster, [CHART_POOL, SEARCH_POOL, RAW_POOL], fake, 0)
    assert "team-search/search-preview: Error: uninstall: Release not loaded" in str(failed.value)
    assert failed.value.details["uninstalled"] == ["team-chat/chat-preview"]
    assert fake.uninstalled == ["chat-preview"] and cluster.names(api.ALPHA_POOL, "platform") == []
    assert cluster.names(api.ALPHA_POOL, "team-search") == ["search"]


def test_an_object_the_release_was_said_to_own_but_helm_left_is_deleted_too():
    cluster = cluster_with(CHART_POOL)
    fake = FakeHelm(cluster, leaves=("chat-epp",)).knowing(CHART_POOL)
    result = preview_removal.remove_stacks(cluster, [CHART_POOL], fake, 0)
    assert cluster.names(api.DEPLOYMENT) == [] and cluster.names(api.SERVICE) == []
    assert result["deleted"] == ["InferenceModel team-chat/chat-assistant", "Deployment team-chat/chat-epp",
                                 "Service team-chat/chat-epp"]


def test_an_object_held_by_a_finalizer_fails_the_wait_by_name():
    cluster = cluster_with(RAW_POOL)
    cluster.live(api.ALPHA_POOL, "raw", "platform")["metadata"]["finalizers"] = ["example.com/hold"]
    with pytest.raises(MigrationError) as held:
        preview_removal.remove_stacks(cluster, [RAW_POOL], FakeHelm(cluster), wait_timeout=0)
    assert "InferencePool platform/raw" in str(held.value) and "finalizer" in str(held.value)


def test_a_pool_a_backup_remembers_but_that_is_gone_needs_nothing():
    cluster = cluster_with()
    result = preview_removal.remove_stacks(cluster, [RAW_POOL], FakeHelm(cluster), 0)
    assert not result["changed"] and cluster.writes == []


def _fake_helm(tmp_path, exit_code, says):
    binary = tmp_path / "helm"
    binary.write_text("#!/bin/sh\necho \"$@\" > %s/args\necho '%s' >&2\nexit %d\n" % (tmp_path, says, exit_code))
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    return str(binary)


def test_helm_uninstall_waits_for_the_release_in_its_namespace(tmp_path):
    helm.uninstall(_fake_helm(tmp_path, 0, ""), {"namespace": "team-chat", "name": "chat-preview"}, 45, {})
    assert (tmp_path / "args").read_text().split() == [
        "uninstall", "chat-preview", "--namespace", "team-chat", "--wait", "--timeout", "45s"]


def test_a_failing_helm_uninstall_raises_with_helms_message(tmp_path):
    binary = _fake_helm(tmp_path, 1, "Error: uninstall: Release not loaded: chat-preview: release: not found")
    with pytest.raises(MigrationError) as failed:
        helm.uninstall(binary, {"namespace": "team-chat", "name": "chat-preview"}, 45, {})
    assert "exited 1: Error: uninstall: Release not loaded: chat-preview" in str(failed.value)


def test_helm_connects_like_kubernetes_core_helm_from_the_k8s_auth_variables():
    environ = {"K8S_AUTH_KUBECONFIG": "/runner/env/kubeconfig", "K8S_AUTH_VERIFY_SSL": "false", "HOME": "/root"}
    assert helm.connection_params({"kubeconfig": None, "validate_certs": None}, environ) == {
        "kubeconfig": "/runner/env/kubeconfig", "validate_certs": False}
    # An option the task sets wins over the variable.
    assert helm.connection_params({"kubeconfig": "/mine"}, environ) == {"validate_certs": False}
    assert helm.connection_params({}, {}) == {}
