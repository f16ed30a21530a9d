"""ga_releases: every v1 stack's Helm release that needs it is installed or upgraded at once; the rest are left alone."""

import json
import os
import stat
import threading

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, ga_releases, helm
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from memory_cluster import MemoryCluster, helm_release_secret

VALUES = {"inferencePool": {"modelServers": {"matchLabels": {"app": "chat"}}, "targetPorts": [{"number": 8000}]},
          "provider": {"name": "gke"}}


def stack(namespace, release, values=None, mode="helm"):
    """The keys of a ga_plan result that the module reads."""
    return {"namespace": namespace, "release": release, "chart_values": values or VALUES, "mode": mode}


class FakeHelm:
    """helm upgrade --install as Helm records it: a new revision Secret with the chart version and values.
    ``together`` makes every install wait for that many installs to be running at once."""

    def __init__(self, cluster, chart_version, together=1, failing=()):
        self.cluster, self.chart_version = cluster, chart_version
        self.barrier = threading.Barrier(together, timeout=5)
        self.failing = failing
        self.installed = []

    def __call__(self, release):
        self.barrier.wait()
        if release["name"] in self.failing:
            raise MigrationError("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress")
        revisions = helm.release_secrets(self.cluster, release)
        self.cluster.add(api.SECRET, helm_release_secret(release["name"], release["namespace"], len(revisions) + 1,
                                                         values=release["values"], chart_version=self.chart_version))
        self.installed.append(release["name"])


def test_every_release_is_installed_at_once_and_a_second_run_changes_nothing():
    cluster = MemoryCluster()
    stacks = [stack("team-chat", "chat"), stack("team-search", "search"), stack("platform", "raw", mode="manifests")]
    fake = FakeHelm(cluster, "v1.0.0", together=2)
    result = ga_releases.install_releases(cluster, stacks, "v1.0.0", fake)
    # Both installs were running at the same time (the barrier of 2 would time out otherwise); manifests are skipped.
    assert sorted(fake.installed) == ["chat", "search"]
    assert result["changed"] and result["installed"] == ["team-chat/chat", "team-search/search"]
    assert result["upgraded"] == [] and result["unchanged"] == []
    assert result["diff"]["after"]["team-chat/chat"] == {"chart_version": "v1.0.0", "status": "deployed", "values": VALUES}

    again = FakeHelm(cluster, "v1.0.0")
    second = ga_releases.install_releases(cluster, stacks, "v1.0.0", again)
    assert not second["changed"] and again.installed == []
    assert second["unchanged"] == ["team-chat/chat", "team-search/search"]


@pytest.mark.parametrize("recorded, wanted", [
    (dict(chart_version="v1.0.0", values=dict(VALUES, provider={"name": "none"})), "v1.0.0"),
    (dict(chart_version="v1.0.0"), "v1.3.0"),
    (dict(chart_version="v1.0.0", status="failed"), "v1.0.0"),
    (dict(chart_version="v1.0.0", status="pending-upgrade"), "v1.0.0"),
], ids=["other values", "other chart version", "last upgrade failed", "last upgrade interrupted"])
def test_a_release_that_differs_from_its_newest_revision_is_upgraded(recorded, wanted):
    recorded.setdefault("values", VALUES)
    cluster = MemoryCluster((api.SECRET, helm_release_secret("chat", "team-chat", **recorded)))
    fake = FakeHelm(cluster, wanted)
    result = ga_releases.install_releases(cluster, [stack("team-chat", "chat")], wanted, fake)
    assert result["upgraded"] == ["team-chat/chat"] and fake.installed == ["chat"]
    assert result["diff"]["before"]["team-chat/chat"]["chart_version"] == "v1.0.0"


def test_the_newest_revision_decides_and_versions_match_with_or_without_v():
    cluster = MemoryCluster(
        (api.SECRET, helm_release_secret("chat", "team-chat", 1, values={"old": True}, chart_version="0.9.0")),
        (api.SECRET, helm_release_secret("chat", "team-chat", 2, values=VALUES, chart_version="1.0.0")))
    fake = FakeHelm(cluster, "v1.0.0")
    result = ga_releases.install_releases(cluster, [stack("team-chat", "chat")], "v1.0.0", fake)
    assert not result["changed"] and fake.installed == []


def test_without_a_chart_version_only_the_values_decide():
    cluster = MemoryCluster((api.SECRET, helm_release_secret("chat", "team-chat", values=VALUES, chart_version="v1.5.0")))
    result = ga_releases.install_releases(cluster, [stack("team-chat", "chat")], "", FakeHelm(cluster, "v1.5.0"))
    assert result["unchanged"] == ["team-chat/chat"]


def test_check_mode_reads_the_records_and_installs_nothing():
    cluster = MemoryCluster((api.SECRET, helm_release_secret("chat", "team-chat", values=VALUES, chart_version="v1.0.0")),
                            dry_run=True)
    stacks = [stack("team-chat", "chat"), stack("team-search", "search")]
    result = ga_releases.install_releases(cluster, stacks, "v1.3.0", None)
    assert result["installed"] == ["team-search/search"] and result["upgraded"] == ["team-chat/chat"]
    assert cluster.writes == []


def test_a_failed_install_is_named_and_the_other_releases_are_still_installed():
    cluster = MemoryCluster()
    fake = FakeHelm(cluster, "v1.0.0", together=2, failing=("search",))
    with pytest.raises(MigrationError) as failed:
        ga_releases.install_releases(cluster, [stack("team-chat", "chat"), stack("team-search", "search")], "v1.0.0", fake)
    assert "team-search/search: Error: UPGRADE FAILED: another operation" in str(failed.value)
    assert failed.value.details["installed"] == ["team-chat/chat"] and fake.installed == ["chat"]


def test_a_local_chart_directory_gives_its_own_version(tmp_path):
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: inferencepool\nversion: v0\n")
    assert ga_releases.chart_version_of(str(tmp_path), "v1.0.0") == "v0"
    assert ga_releases.chart_version_of("oci://registry.example/charts/inferencepool", "v1.3.0") == "v1.3.0"
    assert ga_releases.chart_version_of("oci://registry.example/charts/inferencepool", None) == ""


def _fake_helm(tmp_path, exit_code, says):
    binary = tmp_path / "helm"
    # Keep the arguments and the values file Helm was given (the module removes the file afterwards).
    binary.write_text("#!/bin/sh\necho \"$@\" > %s/args\nfor a in \"$@\"; do case \"$a\" in *.json) cp \"$a\" %s/values;; "
                      "esac; done\necho '%s' >&2\nexit %d\n" % (tmp_path, tmp_path, says, exit_code))
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    return str(binary)


def test_helm_upgrade_install_gives_the_values_and_version_without_waiting(tmp_path):
    binary = _fake_helm(tmp_path, 0, "")
    helm.upgrade_install(binary, {"namespace": "team-chat", "name": "chat"}, "oci://r/inferencepool", "v1.0.0",
                         VALUES, {})
    args = (tmp_path / "args").read_text().split()
    assert args[:6] == ["upgrade", "chat", "oci://r/inferencepool", "--install", "--namespace", "team-chat"]
    assert args[-2:] == ["--version", "v1.0.0"] and "--wait" not in args
    assert ga_releases._canonical(json.loads((tmp_path / "values").read_text())) == VALUES
    assert not os.path.exists(args[args.index("--values") + 1])


def test_a_failing_helm_upgrade_raises_with_helms_message(tmp_path):
    binary = _fake_helm(tmp_path, 1, "Error: chart not found")
    with pytest.raises(MigrationError) as failed:
        helm.upgrade_install(binary, {"namespace": "team-chat", "name": "chat"}, "oci://r/inferencepool", "", {}, {})
    assert "exited 1: Error: chart not found" in str(failed.value)
    assert "--version" not in (tmp_path / "args").read_text()
