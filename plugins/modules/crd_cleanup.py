#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: crd_cleanup
short_description: Delete the preview Inference Gateway CRDs once nothing uses them
version_added: 1.0.0
description:
  - Deletes the named CustomResourceDefinitions, by default the two CRDs of the preview API,
    C(inferencepools.inference.networking.x-k8s.io) and C(inferencemodels.inference.networking.x-k8s.io).
    Deleting a CRD deletes every object of its kind in every namespace, so this module checks first.
  - Before the first write it looks across all namespaces for blockers, and with any blocker it changes
    nothing and fails, listing each blocker with its kind, namespace, name and the fix.
    A blocker is a custom resource of a target CRD that still exists; an HTTPRoute backendRef that points
    at a kind of a target CRD (for the defaults, the preview InferencePool); or an endpoint-picker (EPP)
    Deployment whose container serves a pool of such a kind, told by its flags (v0.x C(-poolName),
    or C(--pool-name) with C(--pool-group inference.networking.x-k8s.io)).
  - It never deletes a CRD that is not named in O(crds). It refuses to delete
    C(inferenceobjectives.inference.networking.x-k8s.io) (same API group as the preview CRDs, still used by
    the v1 stack) and C(inferencepools.inference.networking.k8s.io) (the v1 InferencePool) unless they are
    named in O(crds) and O(force) is set.
  - With O(backup_dir) it writes each CRD and every remaining custom resource as YAML before deleting,
    in the layout M(inference_gateway.migration.migration_restore) reads.
  - After deleting, it waits until the CRDs are really gone (the API server first deletes their objects,
    and finalizers can hold them).
  - CRDs that are already absent are fine; when all are absent nothing changes.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  crds:
    description:
      - Names of the CRDs to delete.
    type: list
    elements: str
    default:
      - inferencepools.inference.networking.x-k8s.io
      - inferencemodels.inference.networking.x-k8s.io
  force:
    description:
      - Delete the CRDs even though custom resources of them remain; those are deleted with their CRDs.
      - Only together with O(backup_dir), which receives them first. Without O(backup_dir) the module refuses.
      - Routes and EPP Deployments that still use a target kind block even with O(force); move them first.
      - Deleting a CRD the v1 stack needs takes both O(force) and the CRD's name in O(crds).
    type: bool
    default: false
  backup_dir:
    description:
      - Parent directory of the backup. Before deleting, the module writes each target CRD and every
        remaining custom resource of it to a new directory C(<backup_dir>/<UTC timestamp>/), one YAML file
        per object plus C(index.yaml).
      - Restore with M(inference_gateway.migration.migration_restore) or C(playbooks/rollback.yml).
    type: path
  wait_timeout:
    description:
      - Seconds to wait until the deleted CRDs are gone. On timeout the task fails naming them.
    type: int
    default: 120
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
attributes:
  check_mode:
    support: full
    details: The blocker checks run as usual; the deletes are sent as server-side dry runs and no backup
      file is written. The result says what would be deleted and which files would be written.
  diff_mode:
    support: full
    details: Before, the inference CRDs (and any other named CRD) present; after, those that would remain.
notes:
  - Use this instead of C(kubectl delete -f) of a release bundle, which is easy to get wrong, since the
    v1.0.0 bundle also holds the v1 InferencePool CRD.
seealso:
  - module: inference_gateway.migration.migration_backup
  - module: inference_gateway.migration.migration_restore
  - module: inference_gateway.migration.traffic_split
"""

EXAMPLES = r"""
- name: Delete the preview CRDs, backing up anything found first
  inference_gateway.migration.crd_cleanup:
    backup_dir: ~/inference-gateway-migration/backups
  register: cleanup

- name: What would be deleted (nothing is)
  inference_gateway.migration.crd_cleanup:
  check_mode: true
  diff: true

- name: Delete the preview CRDs although some InferenceModels were left behind (they are backed up first)
  inference_gateway.migration.crd_cleanup:
    force: true
    backup_dir: /var/backups/igw
    wait_timeout: 300
"""

RETURN = r"""
deleted:
  description: The CRDs deleted (in check mode, that would be deleted).
  returned: always
  type: list
  elements: str
  sample: [inferencepools.inference.networking.x-k8s.io, inferencemodels.inference.networking.x-k8s.io]
absent:
  description: The named CRDs that were not there.
  returned: always
  type: list
  elements: str
  sample: []
blockers:
  description:
    - On failure, everything that stopped the deletion. On success with O(force), the custom resources that
      were backed up and deleted with their CRDs; otherwise empty.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Kind of the blocking object.
      type: str
      sample: InferenceModel
    namespace:
      description: Its namespace (null for a cluster-scoped object).
      type: str
      sample: team-b
    name:
      description: Its name.
      type: str
      sample: stray-model
    reason:
      description: Why it blocks and what to do.
      type: str
      sample: "InferenceModel inference.networking.x-k8s.io/v1alpha2 still exists and deleting CRD
        inferencemodels.inference.networking.x-k8s.io deletes it: delete or migrate it first, or set force: true
        with backup_dir to back it up and delete it with the CRD"
backup_files:
  description: The files written to the backup (in check mode, that would be written), C(index.yaml) among them.
  returned: always
  type: list
  elements: str
  sample:
    - /var/backups/igw/20260301T123005Z/customresourcedefinitions.apiextensions.k8s.io/inferencemodels.inference.networking.x-k8s.io.yaml
    - /var/backups/igw/20260301T123005Z/index.yaml
diff:
  description: The inference CRDs present before and after.
  returned: when diff mode is on
  type: dict
  sample:
    before:
      crds: [inferenceobjectives.inference.networking.x-k8s.io, inferencepools.inference.networking.x-k8s.io]
    after:
      crds: [inferenceobjectives.inference.networking.x-k8s.io]
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, cleanup, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    crds=dict(type="list", elements="str", default=list(api.ALPHA_CRDS)),
    force=dict(type="bool", default=False),
    backup_dir=dict(type="path"),
    wait_timeout=dict(type="int", default=waiting.DEFAULT_TIMEOUT),
)


def remove_crds(module, cluster):
    params = module.params
    return cleanup.remove_crds(cluster, params["crds"], force=params["force"], backup_dir=params["backup_dir"],
                               wait_timeout=params["wait_timeout"])


def main():
    run_module(OPTIONS, remove_crds)


if __name__ == "__main__":
    main()
