# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Installing or upgrading the Helm releases of the v1 stacks, every release at once.

Each release is held against the newest revision Helm recorded for it (its status, chart version and the values
it was given). Only the releases that differ are installed or upgraded, all at the same time, each with
``helm upgrade --install`` and without waiting for its resources: the ga_stack role then waits once for every
endpoint picker. So installing N stacks costs about one install, not N.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible.module_utils.common.yaml import yaml_load
from ansible_collections.inference_gateway.migration.plugins.module_utils import helm
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

DEPLOYED = "deployed"


def chart_version_of(chart_ref, chart_version):
    """The chart version a release of ``chart_ref`` gets: a local chart directory's own (Helm ignores --version
    for a directory), else ``chart_version`` (empty: the registry's newest, which this module does not know)."""
    chart_file = os.path.join(chart_ref, "Chart.yaml")
    if os.path.isdir(chart_ref) and os.path.isfile(chart_file):
        with open(chart_file) as chart:
            return str((yaml_load(chart) or {}).get("version") or "")
    return chart_version or ""


def _same_version(recorded, wanted):
    # Helm accepts and records versions with or without the leading v (v1.0.0 and 1.0.0 are one chart).
    return not wanted or str(recorded or "").lstrip("v") == str(wanted).lstrip("v")


def _canonical(values):
    return json.loads(json.dumps(values or {}, sort_keys=True))


def release_state(record):
    """What the diff shows of a release revision record: chart version, status and the values it was given."""
    return {"chart_version": ((record.get("chart") or {}).get("metadata") or {}).get("version"),
            "status": (record.get("info") or {}).get("status"), "values": record.get("config") or {}}


def plan_release(cluster, stack, chart_version):
    """The release of one v1 stack (a ga_plan result in helm mode) with the action it needs: ``install`` (Helm keeps
    no record), ``upgrade`` (the newest revision is not deployed, or has another chart version or other values) or
    None; and its state before."""
    release = {"namespace": stack["namespace"], "name": stack["release"], "values": stack["chart_values"]}
    record = helm.newest_revision(cluster, release)
    if record is None:
        return dict(release, action="install", before=None)
    before = release_state(record)
    unchanged = (before["status"] == DEPLOYED and _same_version(before["chart_version"], chart_version)
                 and _canonical(before["values"]) == _canonical(release["values"]))
    return dict(release, action=None if unchanged else "upgrade", before=before)


def install_releases(cluster, stacks, chart_version, install):
    """Install or upgrade the Helm release of every stack in ``stacks`` that needs it, all at once; see the
    ga_stack_releases module for the contract. ``install(release)`` runs ``helm upgrade --install`` of one release
    ({namespace, name, values}) and raises MigrationError when it fails; it is called from worker threads.

    In check mode (``cluster.dry_run``) nothing is installed; the result says what would be.
    """
    releases = [plan_release(cluster, stack, chart_version) for stack in stacks if stack.get("mode", "helm") == "helm"]
    by_action = dict((action, [helm.release_label(r) for r in releases if r["action"] == action])
                     for action in ("install", "upgrade", None))
    changing = [release for release in releases if release["action"]]
    result = {
        "changed": bool(changing), "installed": by_action["install"], "upgraded": by_action["upgrade"],
        "unchanged": by_action[None],
        "diff": {"before": dict((helm.release_label(r), r["before"]) for r in changing if r["before"]),
                 "after": dict((helm.release_label(r), {"chart_version": chart_version or None, "status": DEPLOYED,
                                                        "values": r["values"]}) for r in changing)},
    }
    if cluster.dry_run or not changing:
        return result
    failures = helm.for_each_release(install, changing)[1]
    if failures:
        raise MigrationError(
            "helm upgrade --install failed for %s; the other releases were installed. Fix the cause and run again "
            "(releases already in place are left as they are)." % helm.failures_message(failures),
            installed=[name for name in by_action["install"] if name not in failures],
            upgraded=[name for name in by_action["upgrade"] if name not in failures])
    return result
