# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The fleet report: one run over many clusters, from the report each cluster wrote.

A fleet run migrates its clusters in batches, canary first, and stops at the first
cluster that fails. The fleet report says for each cluster what it looked like
before, what changed, what the gates measured and why it failed, and names the
clusters the run never reached, which it left exactly as they were.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import report
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

NOT_REACHED = "not_reached"
# The outcomes a cluster report can have, then the one only a fleet has.
OUTCOMES = report.OUTCOMES + (NOT_REACHED,)


def _sum_measured(values):
    measured = [value for value in values if value is not None]
    return sum(measured) if measured else None


def fleet_summary(reports, clusters):
    """The fleet report of ``clusters`` (inventory order) from ``reports`` (path of a cluster report -> its JSON).

    Clusters without a report are ``not_reached``. The fleet outcome is ``failed`` when any
    cluster failed or rolled back, ``succeeded`` when every cluster succeeded, and
    ``in_progress`` while clusters are still to come.
    """
    if not reports:
        raise MigrationError("no cluster report to aggregate: the fleet report needs the JSON report of at least one "
                             "cluster (roles/report writes one per cluster)")
    entries = dict((document["cluster"], report.cluster_entry(path, document))
                   for path, document in sorted(reports.items()))
    strangers = sorted(set(entries) - set(clusters))
    if strangers:
        raise MigrationError("reports of clusters outside the fleet: %s; the fleet is %s" % (
            ", ".join(strangers), ", ".join(clusters)))
    rows = [entries.get(cluster) or {"cluster": cluster, "outcome": NOT_REACHED} for cluster in clusters]
    counts = dict((outcome, sum(1 for row in rows if row["outcome"] == outcome)) for outcome in OUTCOMES)
    failed_clusters = [row["cluster"] for row in rows if row["outcome"] not in (report.SUCCEEDED, NOT_REACHED)]
    if failed_clusters:
        outcome = "failed"
    elif counts[NOT_REACHED]:
        outcome = "in_progress"
    else:
        outcome = report.SUCCEEDED
    reported = list(entries.values())
    return {
        "outcome": outcome,
        "started_at": min(entry["generated_at"] for entry in reported),
        "path_kinds": sorted(set(document.get("path_kind") for document in reports.values())),
        "summary": dict(counts, clusters=len(rows),
                        pools_migrated=sum(len(entry["pools_migrated"]) for entry in reported),
                        failed_requests=_sum_measured(entry["failed_requests"] for entry in reported)),
        "failed_clusters": failed_clusters,
        "not_reached": [row["cluster"] for row in rows if row["outcome"] == NOT_REACHED],
        "clusters": rows,
    }
