# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The console summary of playbooks/detect.yml: a table of pools and phases, then what else was found.

Orphans are named, not only counted: an operator reading the summary must be able
to find every object that keeps a migration from finishing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import describe
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import qualified_names

HEADER = ("API", "POOL", "PHASE", "ALPHA/GA WEIGHT", "PAIRED WITH", "MODELS", "EPP")
COLUMN_GAP = "  "


def _weights(pool):
    rules = [rule for route in pool.get("routes") or [] for rule in route.get("rules") or []]
    if not rules:
        return "no route"
    return "%d/%d" % (sum(r["alpha_weight"] for r in rules), sum(r["ga_weight"] for r in rules))


def _epp(pool):
    epp = pool.get("epp") or {}
    if epp.get("ready"):
        return "ready"
    return "not ready" if epp.get("service_found") else "missing"


def pool_rows(detect):
    """One row per pool, preview pools first."""
    rows = []
    for pool in detect.get("alpha_pools") or []:
        counterpart = pool.get("ga_counterpart")
        rows.append(("alpha", "%s/%s" % (pool["namespace"], pool["name"]), pool.get("phase") or "-", _weights(pool),
                     qualified_names([counterpart])[0] if counterpart else "-", str(len(pool.get("models") or [])),
                     _epp(pool)))
    for pool in detect.get("v1_pools") or []:
        rows.append(("v1", "%s/%s" % (pool["namespace"], pool["name"]), pool.get("phase") or "-", _weights(pool),
                     pool.get("migrated_from") or "-", "-", _epp(pool)))
    return rows


def table(rows):
    """Rows as left-aligned columns under HEADER."""
    widths = [max(len(row[column]) for row in [HEADER] + rows) for column in range(len(HEADER))]
    return [COLUMN_GAP.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in [HEADER] + rows]


def orphan_lines(detect):
    """One line per orphan: an InferenceModel whose pool is missing, a route backendRef to a missing pool."""
    orphans = detect.get("orphans") or {}
    lines = ["orphan InferenceModel %s/%s: its InferencePool %s/%s (%s) does not exist"
             % (m["namespace"], m["name"], m["namespace"], (m.get("pool_ref") or {}).get("name"),
                (m.get("pool_ref") or {}).get("group")) for m in orphans.get("models") or []]
    lines.extend("orphan backendRef: HTTPRoute %s/%s rule %d -> InferencePool %s/%s (%s, weight %s) does not exist"
                 % (o["namespace"], o["name"], o["rule"], o["backend"]["namespace"], o["backend"]["name"],
                    o["backend"]["group"], o["backend"]["weight"]) for o in orphans.get("routes") or [])
    return lines


def detect_summary(detect, report_file):
    """The text detect.yml prints: the pool table, the verdict, the CRD plan, every orphan and where the result is.

    One string of lines, so that the console shows it as a block instead of wrapping each line.
    """
    rows = pool_rows(detect)
    summary = detect.get("summary") or {}
    lines = table(rows)
    if not rows:
        lines.append("(no InferencePool in either API group)")
    lines.extend([
        "",
        "migration needed: %s (preview pools: %s, InferenceModels: %s, v1 pools: %s, InferenceObjectives: %s)" % (
            "yes" if detect.get("migration_needed") else "no", summary.get("alpha_pools"),
            summary.get("inference_models"), summary.get("v1_pools"), summary.get("objectives")),
        "server: %s%s" % ((detect.get("server_version") or {}).get("git_version"),
                          "; GKE ships the v1 InferencePool CRD" if detect.get("gke_ships_ga_pool_crd") else ""),
        "CRDs to install: %s; platform-managed, keep: %s" % (
            ", ".join((detect.get("crd_plan") or {}).get("install") or []) or "none",
            ", ".join((detect.get("crd_plan") or {}).get("keep_managed") or []) or "none"),
    ])
    orphans = orphan_lines(detect)
    lines.append("orphans: %s" % (len(orphans) or "none"))
    lines.extend("  " + line for line in orphans)
    lines.extend([
        "warnings: %d (shown above)" % len(detect.get("warnings") or []),
        "full result: %s" % report_file,
    ])
    return "\n".join(lines)


def counts(result, routes):
    """The numbers of detect's result, phase by phase."""
    phases = dict((phase, 0) for phase in api.PHASES)
    for pool in result["alpha_pools"]:
        phases[pool["phase"]] += 1
    phases[api.PHASE_ALPHA_REMOVED] = sum(1 for p in result["v1_pools"] if p["phase"] == api.PHASE_ALPHA_REMOVED)
    return {
        "alpha_pools": len(result["alpha_pools"]),
        "removed_alpha_pools": len(result["removed_alpha_pools"]),
        "inference_models": len(result["inference_models"]),
        "v1_pools": len(result["v1_pools"]),
        "objectives": len(result["objectives"]),
        "model_rewrites": len(result["model_rewrites"]),
        "routes_to_alpha": sum(
            1 for r in routes if any(key.group == api.ALPHA_GROUP for _r, _i, key, _w in refs.route_backends(r))
        ),
        "orphan_models": len(result["orphans"]["models"]),
        "orphan_route_refs": len(result["orphans"]["routes"]),
        "managed_objects": len(result["managed_objects"]),
        "last_applied": len(result["last_applied"]),
        "phases": phases,
        "warnings": len(result["warnings"]),
    }


def preview_objects(result):
    """Human names of every preview-API object in the result (alpha pools and InferenceModels)."""
    return [describe(api.ALPHA_POOL, p["name"], p["namespace"]) for p in result["alpha_pools"]] + [
        describe(api.INFERENCE_MODEL, m["name"], m["namespace"]) for m in result["inference_models"]
    ]


def refuse_preview_objects(result):
    """Fail like Pluto's exit codes when preview objects exist; the whole result goes with the failure."""
    found = preview_objects(result)
    if found:
        raise MigrationError(
            "%d preview API object(s) found; migrate them to %s before relying on this cluster being preview-free "
            "(or run without fail_on_found to only report): %s" % (len(found), api.GA_POOL.api_version, "; ".join(found)),
            **result
        )
