#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: permissions_check
short_description: Check that the caller may do everything a migration path needs
version_added: 1.0.0
description:
  - Asks the API server, with one SelfSubjectAccessReview per permission, whether the current
    credentials may perform every action the chosen migration path will take.
  - Fails before anything is changed and names each missing permission, so that a migration never
    stops half way for lack of rights.
  - Never changes the cluster.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  path:
    description:
      - The migration path whose permissions to check.
    type: str
    choices: [detect, zero_downtime, simple, rollback]
    default: zero_downtime
  namespaces:
    description:
      - Namespaces the migration writes in (those of the preview pools).
    type: list
    elements: str
    default: []
  helm:
    description:
      - Whether Helm manages the stacks (Helm stores releases in Secrets).
    type: bool
    default: true
  gke_policies:
    description:
      - Whether GKE HealthCheckPolicy and GCPBackendPolicy objects are created and removed.
    type: bool
    default: true
  fail_on_denied:
    description:
      - Fail the task when any permission is denied. With V(false) the result only lists them.
    type: bool
    default: true
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
  - inference_gateway.migration.cluster.read_only
"""

EXAMPLES = r"""
- name: Check the rights a zero-downtime migration of namespace default needs
  inference_gateway.migration.permissions_check:
    path: zero_downtime
    namespaces: [default]
"""

RETURN = r"""
allowed:
  description: Permissions the caller has, as verb, group, resource and namespace.
  returned: always
  type: list
  elements: dict
  sample: [{"verb": "list", "group": "", "resource": "pods", "namespace": null}]
denied:
  description: Permissions the caller lacks, in the same form.
  returned: always
  type: list
  elements: dict
  sample: []
denied_summary:
  description: One readable line per denied permission.
  returned: always
  type: list
  elements: str
  sample: ["delete customresourcedefinitions.apiextensions.k8s.io cluster-wide"]
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import permissions
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    path=dict(type="str", choices=list(permissions.PATHS), default="zero_downtime"),
    namespaces=dict(type="list", elements="str", default=[]),
    helm=dict(type="bool", default=True),
    gke_policies=dict(type="bool", default=True),
    fail_on_denied=dict(type="bool", default=True),
)


def check_permissions(module, cluster):
    params = module.params
    needed = permissions.required_permissions(params["path"], params["namespaces"], params["helm"], params["gke_policies"])
    allowed, denied = permissions.check(cluster, needed)
    summary = [permissions.describe_permission(p) for p in denied]
    result = dict(changed=False, allowed=allowed, denied=denied, denied_summary=summary)
    if denied and params["fail_on_denied"]:
        raise MigrationError(
            "The credentials in use lack %d permission(s) the %s path needs: %s. Grant them (for example with a "
            "ClusterRole bound to this user) and run again; nothing was changed."
            % (len(denied), params["path"], "; ".join(summary)),
            **result
        )
    return result


def main():
    run_module(OPTIONS, check_permissions)


if __name__ == "__main__":
    main()
