# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The report of one migration run on one cluster: how it is written and how it is read back.

roles/report writes the document that ``cluster_report`` builds; the fleet report
reads it back with ``cluster_entry``. Both sides live here so that the shape of
the report has one home.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import OrderedDict
from datetime import datetime

from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import qualified_names

SUCCEEDED = "succeeded"
# The outcomes a cluster report can have.
OUTCOMES = (SUCCEEDED, "failed", "rolled_back")
MIGRATION_PATHS = ("simple", "zero_downtime")
# The report's time stamp: in file names, and as ISO 8601 in the document.
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
PROBE_FIGURES = ("sent", "ok", "failed_requests", "success_ratio")


def _measured(value, cast):
    """A figure the run measured, or None when it was not measured (Jinja hands over '' or 'None' for that)."""
    if value is None or str(value).strip() in ("", "None"):
        return None
    return cast(value)


def found_pools(found):
    """The pools (namespace/name) a run found: from a preflight plan or a detect result."""
    if "pools" in found:
        return list(found["pools"])
    return qualified_names(found.get("alpha_pools") or [])


def _derived_pools(found, outcome, path_kind):
    """Without an explicit list, a successful migration run migrated the pools it found."""
    if outcome != SUCCEEDED or path_kind not in MIGRATION_PATHS:
        return []
    pools = []
    for pool in found_pools(found) + list(found.get("finished_pools") or []):
        if pool not in pools:
            pools.append(pool)
    return pools


def split_routes(split):
    """The routes a ``traffic_split`` task selected, each once, in order, as {namespace, name, rules}: ``rules`` holds
    the backend weights the task left in each rule it wrote ([{index, weights}], the last write of a rule winning).

    The task is usually registered over a loop of pool pairs; a skipped task (no pools) and a
    single result are read as well. Pools that share a route write it one after the other, each on
    the route as the previous one left it, so the last write of a rule holds every pool's weights.
    """
    results = split.get("results")
    if results is None:
        results = [split] if "routes" in split else []
    written = OrderedDict()
    for route in (route for result in results for route in result.get("routes") or []):
        rules = written.setdefault((route["namespace"], route["name"]), {})
        rules.update((rule["index"], rule["after"]) for rule in route.get("rules") or [])
    return [{"namespace": namespace, "name": name,
             "rules": [{"index": index, "weights": weights} for index, weights in sorted(rules.items())]}
            for (namespace, name), rules in written.items()]


def with_written_weights(routes, split):
    """``routes`` ({namespace, name}), each with the ``rules`` a ``traffic_split`` task wrote in it, if it wrote any:
    what a gate holds the live route against."""
    written = dict(((route["namespace"], route["name"]), route["rules"]) for route in split_routes(split))
    return [dict(route, rules=written[(route["namespace"], route["name"])])
            if (route["namespace"], route["name"]) in written else route for route in routes]


def route_change(split, phase, step, action):
    """The change-log entry of a ``traffic_split`` task: the routes it wrote, whether anything changed."""
    return {"phase": phase, "step": step, "action": action,
            "object": ", ".join(route["name"] for route in split_routes(split)), "changed": bool(split.get("changed"))}


def grant_changes(result, phase, step):
    """The change-log entries of a ``reference_grants`` task: one per grant written, saying what it now allows or
    no longer allows (an entry without a name is every InferencePool of its group)."""
    def described(entries, group_word):
        return ", ".join(entry.get("name") or "every %s InferencePool" % group_word for entry in entries)

    changes = []
    for grant in (result or {}).get("grants") or []:
        actions = []
        if grant.get("added"):
            actions.append("now allows %s" % described(grant["added"], "v1"))
        if grant.get("removed"):
            actions.append("no longer allows %s" % described(grant["removed"], "preview"))
        changes.append({"phase": phase, "step": step, "action": "ReferenceGrant " + " and ".join(actions),
                        "object": "ReferenceGrant %s/%s" % (grant["namespace"], grant["name"]), "changed": True})
    return changes


def cluster_report(cluster, stamp, path_kind, outcome=SUCCEEDED, error="", check_mode=False, found=None,
                   pools_migrated=None, changes=None, gates=None, failed_requests=None, downtime_seconds=None,
                   backup_path=None, warnings=None, leftovers=None, last_applied=None, downtime_by_pool=None):
    """The JSON document of one run on one cluster; ``stamp`` is the report's time in STAMP_FORMAT (UTC)."""
    found = found or {}
    outcome = str(outcome).strip()
    return {
        "cluster": cluster,
        "generated_at": datetime.strptime(stamp, STAMP_FORMAT).strftime(ISO_FORMAT),
        "path_kind": path_kind,
        "outcome": outcome,
        "error": str(error or "").strip(),
        "check_mode": bool(check_mode),
        "found": found,
        "pools_migrated": (list(pools_migrated) if pools_migrated is not None
                           else _derived_pools(found, outcome, path_kind)),
        "changes": list(changes or []),
        "gates": list(gates or []),
        "failed_requests": _measured(failed_requests, int),
        "downtime_seconds": _measured(downtime_seconds, float),
        "downtime_by_pool": dict((str(pool), float(seconds)) for pool, seconds in (downtime_by_pool or {}).items()),
        "backup_path": str(backup_path or "").strip() or None,
        "warnings": list(warnings or []),
        "leftovers": list(leftovers or []),
        "last_applied": list(last_applied or []),
    }


# --- read back (the fleet report) ----------------------------------------------------------


def state_before(found):
    """Pools and their phases as the run found them (a preflight plan or a detect result)."""
    if "pools" in found:
        pools = [{"pool": pool, "phase": phase} for pool, phase in zip(found["pools"], found.get("phases", []))]
    else:
        pools = [{"pool": "%s/%s" % (pool["namespace"], pool["name"]), "phase": pool.get("phase")}
                 for pool in found.get("alpha_pools", [])]
    return {"migration_needed": found.get("migration_needed"), "pools": pools,
            "finished_pools": found.get("finished_pools", [])}


def gate_figures(gate):
    """What one gate measured: its verdict, the checks that failed and the probe's figures."""
    figures = {
        "name": gate.get("name"),
        "passed": bool(gate.get("passed")),
        "failed_checks": ["%s: %s" % (check.get("check"), check.get("details"))
                          for check in gate.get("checks", []) if not check.get("passed")],
    }
    probe = gate.get("probe") or {}
    if probe.get("sent") is not None:
        figures["probe"] = dict((key, probe.get(key)) for key in PROBE_FIGURES)
        figures["probe"]["p95_ms"] = (probe.get("latency_ms") or {}).get("p95")
        figures["probe"]["failed_targets"] = [target["name"] for target in probe.get("targets") or []
                                              if not target.get("passed")]
    return figures


def cluster_entry(report_path, report):
    """One cluster of the fleet report, read from the document ``cluster_report`` wrote to ``report_path``."""
    changes = report.get("changes", [])
    return {
        "cluster": report["cluster"],
        "outcome": report["outcome"],
        "error": report.get("error") or "",
        "generated_at": report.get("generated_at"),
        "state_before": state_before(report.get("found") or {}),
        "pools_migrated": report.get("pools_migrated") or [],
        "changes": changes,
        "changed_count": sum(1 for change in changes if change.get("changed")),
        "gates": [gate_figures(gate) for gate in report.get("gates", [])],
        "failed_requests": report.get("failed_requests"),
        "downtime_seconds": report.get("downtime_seconds"),
        "backup_path": report.get("backup_path"),
        "leftovers": report.get("leftovers") or [],
        "report": report_path,
    }
