"""The fleet_report role: its interface, and the files it writes from cluster reports over serial batches."""

import json
import os
from pathlib import Path

import pytest
import yaml

from support import REPO, run_playbook

ROLE = REPO / "roles" / "fleet_report"
PLAYBOOK = Path(__file__).with_name("fleet_report.yml")
SPEC = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def test_defaults_match_the_argument_specs():
    assert set(DEFAULTS) == set(SPEC)
    assert all(name.startswith("fleet_report_") and option["description"] for name, option in SPEC.items())
    assert {name: option.get("default") for name, option in SPEC.items()} == DEFAULTS


def cluster_report(cluster, outcome, generated_at, **fields):
    return dict({"cluster": cluster, "generated_at": generated_at, "path_kind": "zero_downtime",
                 "outcome": outcome, "error": "", "check_mode": False,
                 "found": {"migration_needed": True, "pools": ["default/p-preview"], "phases": ["not_started"],
                           "finished_pools": []},
                 "pools_migrated": ["default/p-preview"] if outcome == "succeeded" else [],
                 "changes": [{"phase": 1, "step": "v1 stack", "action": "v1 pool beside default/p-preview",
                              "object": "default/p-ga", "changed": True}],
                 "gates": [{"name": "phase 1", "passed": outcome == "succeeded",
                            "checks": [{"check": "endpoint probe", "details": "measured", "passed": outcome == "succeeded"}],
                            "probe": {"sent": 20, "ok": 20 if outcome == "succeeded" else 0,
                                      "failed_requests": 0 if outcome == "succeeded" else 20,
                                      "success_ratio": 1.0 if outcome == "succeeded" else 0.0,
                                      "latency_ms": {"p95": 12.5}}}],
                 "failed_requests": 0 if outcome == "succeeded" else 20, "downtime_seconds": 0.0,
                 "backup_path": "/backups/%s" % cluster, "warnings": []}, **fields)


def run_fleet(tmp_path, reports, serial):
    """Run the role over clusters c1..c3 in batches of `serial`; `reports` maps cluster -> report document."""
    written = {}
    for cluster, document in reports.items():
        path = tmp_path / "reports" / ("migration-%s.json" % cluster)
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(document))
        written[cluster] = str(path)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"fleet": {"hosts": {name: {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
        for name in ("c1", "c2", "c3")}}}))
    run_playbook("-i", inventory, PLAYBOOK, "-e", json.dumps({"fleet_test_reports": written, "fleet_test_serial": serial}),
                 env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    return sorted((tmp_path / "reports").glob("fleet-*"))


def test_a_stopped_run_names_the_failed_canary_and_the_clusters_left_alone(tmp_path):
    failed_canary = cluster_report("c1", "failed", "2026-11-21T10:00:05Z", error="Gate 'phase 1' failed: 0/20 answered 2xx")
    files = run_fleet(tmp_path, {"c1": failed_canary}, serial=1)
    assert [f.name for f in files] == ["fleet-20261121T100005Z.json", "fleet-20261121T100005Z.md"]
    document = json.loads(files[0].read_text())
    assert document["outcome"] == "failed"
    assert document["failed_clusters"] == ["c1"] and document["not_reached"] == ["c2", "c3"]
    assert document["clusters"][0]["report"] == str(tmp_path / "reports" / "migration-c1.json")
    markdown = files[1].read_text()
    assert "The run stopped at c1: c2, c3 not touched." in markdown
    assert "| c2 | not reached |" in markdown
    assert "Gate 'phase 1' failed: 0/20 answered 2xx" in markdown
    assert "| phase 1 | **failed** | 20 / 0 / 20 | 0.0 | 12.5 | endpoint probe: measured |" in markdown


@pytest.mark.parametrize("serial", [1, [1, "100%"]])
def test_every_batch_rewrites_the_same_report_until_it_covers_the_fleet(tmp_path, serial):
    files = run_fleet(tmp_path, {name: cluster_report(name, "succeeded", "2026-11-21T10:0%d:00Z" % index)
                                 for index, name in enumerate(("c1", "c2", "c3"))}, serial=serial)
    assert [f.name for f in files] == ["fleet-20261121T100000Z.json", "fleet-20261121T100000Z.md"]
    document = json.loads(files[0].read_text())
    assert document["outcome"] == "succeeded"
    assert document["summary"] == {"clusters": 3, "succeeded": 3, "failed": 0, "rolled_back": 0, "not_reached": 0,
                                   "pools_migrated": 3, "failed_requests": 0}
    assert "| c3 | **succeeded** | default/p-preview (not_started) | 1 of 1 changed the cluster | 1 of 1 | 0 | 0.0 s |" \
        in files[1].read_text()
