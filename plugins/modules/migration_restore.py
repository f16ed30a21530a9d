#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: migration_restore
short_description: Restore the preview Inference Gateway stack from a migration backup
version_added: 1.0.0
description:
  - Rolls a migration back from a directory written by M(inference_gateway.migration.migration_backup)
    (or by M(inference_gateway.migration.crd_cleanup) with C(backup_dir)).
  - "Works in this order: first the CRDs of the backup that are missing, waiting until each is
    C(Established); then the objects that are missing; then the Helm release Secrets, so that
    C(helm list) shows the preview release again; last the HTTPRoutes."
  - Existing objects are left alone, except for the parts a migration changes, which are put back as the
    backup has them when they differ; a Deployment's containers, a Service's selector and ports, the spec
    of a preview InferencePool, InferenceModel, HealthCheckPolicy or GCPBackendPolicy, the rules of a Role or
    ClusterRole and the subjects of a RoleBinding or ClusterRoleBinding. A ReferenceGrant gets back the C(to)
    entries of the backup it lacks and keeps the others (such as those the migration added for the v1 pools).
  - With O(route_to_alpha), a missing HTTPRoute is created again, and in an existing one each rule that sent
    traffic to a preview InferencePool in the backup gets back the backendRefs it had (the rule is found by its
    matches; a rule that is gone is appended). Other rules and every other field of the route stay as they are.
    Each write is a read-modify-write guarded by C(metadata.resourceVersion).
  - Before the first write it checks that the cluster serves every type in the backup, or that the backup
    holds the CRD for it.
  - A second run changes nothing.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  path:
    description:
      - The backup directory, the one holding C(index.yaml) (for example C(<dest>/20260301T123005Z)).
    type: path
    required: true
  route_to_alpha:
    description:
      - Point the HTTPRoutes back at the preview InferencePools as the backup has them.
      - When false, routes are not touched (not even created), so the restored preview stack serves no traffic
        until its routes are changed.
    type: bool
    default: true
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
attributes:
  check_mode:
    support: full
    details: Writes are sent as server-side dry runs and nothing is persisted. Objects whose CRD the restore
      would create are reported as created without being sent (their type does not exist yet).
  diff_mode:
    support: full
    details: For each object created or changed, the migration-owned parts before and after
      (C(absent) for an object that did not exist).
requirements:
  - PyYAML
notes:
  - The C(playbooks/rollback.yml) playbook runs this module, waits until the routes are accepted and probes
    the gateway.
seealso:
  - module: inference_gateway.migration.migration_backup
  - module: inference_gateway.migration.crd_cleanup
"""

EXAMPLES = r"""
- name: Bring the preview stack back and send traffic to it again
  inference_gateway.migration.migration_restore:
    path: ~/inference-gateway-migration/backups/20260301T123005Z
  register: restored

- name: Recreate the preview objects but leave the routes on the v1 pools
  inference_gateway.migration.migration_restore:
    path: /var/backups/igw/20260301T123005Z
    route_to_alpha: false
"""

RETURN = r"""
path:
  description: The backup directory restored from.
  returned: always
  type: str
  sample: /var/backups/igw/20260301T123005Z
created:
  description: Objects that were missing and were created (in check mode, would be).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Kind of the object.
      type: str
      sample: InferencePool
    api_version:
      description: Its apiVersion.
      type: str
      sample: inference.networking.x-k8s.io/v1alpha2
    namespace:
      description: Its namespace (null when cluster-scoped).
      type: str
      sample: default
    name:
      description: Its name.
      type: str
      sample: vllm-llama3-8b-instruct-preview
updated:
  description: Existing objects whose migration-owned parts (or route backendRefs) were put back; same fields as RV(created).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "HTTPRoute", "api_version": "gateway.networking.k8s.io/v1", "namespace": "default",
            "name": "llm-route"}]
routes:
  description: Every HTTPRoute of the backup, whether it was changed, and where its parent Gateways listen.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: HTTPRoute.
      type: str
      sample: HTTPRoute
    api_version:
      description: Its apiVersion.
      type: str
      sample: gateway.networking.k8s.io/v1
    namespace:
      description: Namespace of the route.
      type: str
      sample: default
    name:
      description: Name of the route.
      type: str
      sample: llm-route
    changed:
      description: Whether the route was created or written (in check mode, would be).
      type: bool
      sample: true
    gateways:
      description:
        - The route's parent Gateways, each with C(namespace), C(name) and C(url), which is
          C(<scheme>://<status.addresses[0].value>:<listener port>), null while the Gateway has no address.
      type: list
      elements: dict
      sample: [{"namespace": "default", "name": "inference-gateway", "url": "http://203.0.113.10:80"}]
model_names:
  description: The C(modelName) of every InferenceModel in the backup, for a probe request.
  returned: always
  type: list
  elements: str
  sample: [food-review, meta-llama/Llama-3.1-8B-Instruct]
diff:
  description: Per object created or changed, its migration-owned parts before and after.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"HTTPRoute default/llm-route": {"rules.backendRefs": [[{"name": "pool-ga"}]]}},
           "after": {"HTTPRoute default/llm-route": {"rules.backendRefs": [[{"name": "pool-preview"}]]}}}
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import restore
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    path=dict(type="path", required=True),
    route_to_alpha=dict(type="bool", default=True),
)


def restore_backup(module, cluster):
    return restore.restore(cluster, module.params["path"], route_to_alpha=module.params["route_to_alpha"])


def main():
    run_module(OPTIONS, restore_backup)


if __name__ == "__main__":
    main()
