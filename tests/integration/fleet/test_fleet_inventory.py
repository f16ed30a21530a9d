"""playbooks/inventory/fleet.example.yml: an inventory the migration playbooks take canary first, one cluster per host."""

import json
import re
import subprocess

import pytest
from runner import REPO, VENV_BIN, ansible_env, run_playbook

INVENTORY = REPO / "playbooks" / "inventory" / "fleet.example.yml"
GROUP = "inference_fleet"
CANARY = "staging-us-central1"
# Play keywords are templated before inventory variables exist: set in the inventory, these would be ignored.
PLAY_LEVEL = ("migration_hosts", "migration_serial")


def ansible(tool, *args):
    completed = subprocess.run([str(VENV_BIN / tool), "-i", str(INVENTORY), *args], capture_output=True, text=True,
                               timeout=300, cwd=REPO, env=ansible_env(REPO / "no-such.kubeconfig"), check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_every_host_is_a_cluster_reached_from_the_controller():
    listed = json.loads(ansible("ansible-inventory", "--list"))
    hosts = listed["_meta"]["hostvars"]
    assert len(hosts) >= 2
    for name, variables in hosts.items():
        assert variables["ansible_connection"] == "local", name
        assert variables["ansible_python_interpreter"] == "{{ ansible_playbook_python }}", name
        assert len({"migration_kubeconfig", "migration_context"} & set(variables)) == 1, name
        assert "{{ inventory_hostname }}" in variables["migration_backup_dest"], name
        assert not set(PLAY_LEVEL) & set(variables), name


@pytest.mark.parametrize("playbook", ["zero_downtime.yml", "simple.yml"])
def test_a_run_starts_with_the_canary_and_stops_there_when_it_fails(playbook, tmp_path):
    """No cluster of the example exists: the canary fails its preflight, and no other cluster is touched."""
    completed = run_playbook("playbooks/" + playbook, tmp_path / "no-such.kubeconfig", inventory=INVENTORY,
                             extra_vars={"migration_hosts": GROUP, "report_dir": str(tmp_path)}, timeout=600)
    output = completed.stdout[-8000:] + completed.stderr[-4000:]
    assert completed.returncode != 0, output
    touched = re.findall(r"^(\S+)\s*: ok=\d+\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)", completed.stdout,
                         re.MULTILINE)
    assert touched == [(CANARY, "1")], output
    (canary,) = tmp_path.glob("migration-%s-*.json" % CANARY)
    assert json.loads(canary.read_text())["outcome"] == "failed"
    (fleet,) = tmp_path.glob("fleet-*.json")
    report = json.loads(fleet.read_text())
    assert report["failed_clusters"] == [CANARY]
    assert report["not_reached"] == ["prod-us-central1", "prod-europe-west4"]
