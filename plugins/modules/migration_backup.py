#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: migration_backup
short_description: Back up every object the Inference Gateway migration may change or delete
version_added: 1.0.0
description:
  - Writes a new backup directory C(<dest>/<UTC timestamp>/) that
    M(inference_gateway.migration.migration_restore) and C(playbooks/rollback.yml) restore from.
  - "It holds, as YAML with the fields the API server owns removed (C(metadata.uid), C(resourceVersion),
    C(generation), C(creationTimestamp), C(managedFields), C(selfLink), C(status), and a Service's
    C(clusterIP) and C(clusterIPs)), one file per object in a folder per kind (named C(<plural>.<group>)):"
  - the preview (C(inference.networking.x-k8s.io)) InferencePools in scope;
  - the InferenceModels that point at them (every InferenceModel in the namespaces in scope when no pool is named);
  - the HTTPRoutes with a backendRef to one of them;
  - the Gateway API ReferenceGrants in the pools' namespaces that let routes of other namespaces reach them
    (the migration extends them to the v1 pools and later drops their preview entries);
  - each pool's endpoint picker (EPP) Deployment (the one its C(extensionRef) names, one whose flags serve the
    pool, or one the pool's Helm release installed), with the EPP's Service, ServiceAccount, mounted
    ConfigMaps, Roles, RoleBindings, ClusterRoles and ClusterRoleBindings (named after the EPP, as the chart
    names them C(<release>-epp), or installed by the release);
  - the GKE HealthCheckPolicies and GCPBackendPolicies that target the pools and the ClusterPodMonitoring of the
    release, when the cluster serves those types;
  - the Helm release Secrets (C(sh.helm.release.v1.<release>.v<N>)) of the releases that own the pools, plus
    their decoded values and manifests under C(helm-releases/), for people;
  - and the preview CRDs.
  - C(index.yaml) lists every object with its file, and says what was backed up, where, when, from which
    cluster version and by which collection version.
  - Only reads from the cluster.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  dest:
    description:
      - Parent directory of the backups; created when missing. Each run writes a new C(<dest>/<UTC timestamp>/).
    type: path
    required: true
  namespaces:
    description:
      - Namespaces to look in. All namespaces by default.
    type: list
    elements: str
  pools:
    description:
      - Preview InferencePools to back up, as C(namespace/name), with what belongs to them. All by default.
      - Each must exist in the namespaces in scope.
    type: list
    elements: str
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
attributes:
  check_mode:
    support: full
    details: Reads the cluster and reports the directory and objects it would write; writes nothing.
  diff_mode:
    support: partial
    details: Reports the backup directory and the object counts as the change.
requirements:
  - PyYAML
notes:
  - Every run that finds something to back up writes a new directory and reports a change; a run that finds
    nothing of the preview API writes nothing and reports no change.
  - Secrets are written as they are (base64, not encrypted). Keep the backup directory as private as the
    cluster credentials.
seealso:
  - module: inference_gateway.migration.migration_restore
  - module: inference_gateway.migration.crd_cleanup
"""

EXAMPLES = r"""
- name: Back up the whole preview stack
  inference_gateway.migration.migration_backup:
    dest: ~/inference-gateway-migration/backups
  register: backup

- name: Show how to roll back
  ansible.builtin.debug:
    msg: "ansible-playbook playbooks/rollback.yml -e rollback_backup_path={{ backup.path }}"

- name: Back up one pool and what belongs to it
  inference_gateway.migration.migration_backup:
    dest: /var/backups/igw
    pools:
      - default/vllm-llama3-8b-instruct-preview
"""

RETURN = r"""
path:
  description: The backup directory written (in check mode, that would be written); null when nothing was found.
  returned: always
  type: str
  sample: /root/inference-gateway-migration/backups/20260301T123005Z
index:
  description: The index file of the backup; null when nothing was found.
  returned: always
  type: str
  sample: /root/inference-gateway-migration/backups/20260301T123005Z/index.yaml
objects:
  description: How many objects of each kind the backup holds.
  returned: always
  type: dict
  sample: {"CustomResourceDefinition": 2, "InferencePool": 1, "InferenceModel": 2, "HTTPRoute": 1,
           "Deployment": 1, "Service": 1, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
           "HealthCheckPolicy": 1, "GCPBackendPolicy": 1, "ClusterPodMonitoring": 1, "Secret": 1}
diff:
  description: The backup directory and object counts.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"backup": null}, "after": {"backup": "/var/backups/igw/20260301T123005Z",
                                                 "objects": {"InferencePool": 1}}}
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import backup
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    dest=dict(type="path", required=True),
    namespaces=dict(type="list", elements="str"),
    pools=dict(type="list", elements="str"),
)


def make_backup(module, cluster):
    params = module.params
    return backup.make_backup(cluster, params["dest"], namespaces=params["namespaces"], pools=params["pools"])


def main():
    run_module(OPTIONS, make_backup)


if __name__ == "__main__":
    main()
