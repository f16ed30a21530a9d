#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: preview_stack_removal
short_description: Remove the preview stacks of migrated InferencePools, every pool at once
version_added: 1.1.0
description:
  - For every preview pool in O(pools), removes what the migration guide removes by hand once no traffic
    reaches the pool any more - the Helm release that owns the pool (C(helm uninstall)), and the pool's
    InferenceModels, endpoint-picker (EPP) Deployment and Service and the pool itself where Helm does not own
    them (raw manifests).
  - Every Helm release is uninstalled at the same time, each C(helm uninstall --wait) waiting for its own
    resources; the objects Helm does not own are deleted meanwhile. Then one wait follows until every object
    is gone. So removing the stacks of many pools costs about as long as removing one.
  - Releases without a Helm record and objects already gone are fine; when nothing is left nothing changes, so
    an interrupted run is finished by the next.
  - When one C(helm uninstall) fails, the others still finish, and the module fails naming the release and
    Helm's message.
  - It removes only the objects named above. It does not touch routes, grants or CRDs; back them up first
    (M(inference_gateway.migration.migration_backup)).
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  pools:
    description:
      - The preview pools whose stacks to remove, as M(inference_gateway.migration.inferencepool_detect) reports
        them in RV(inference_gateway.migration.inferencepool_detect#module:alpha_pools).
      - Each needs C(namespace) and C(name); the module reads C(helm_release) (C(namespace), C(name)), C(models)
        (each C(name)), C(epp.deployment), C(epp.service_found) and C(extension_ref.name). Other keys are ignored.
    type: list
    elements: dict
    required: true
  wait_timeout:
    description:
      - Seconds each C(helm uninstall) may wait for its resources, and then seconds to wait until every removed
        object is gone.
    type: int
    default: 120
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
  - inference_gateway.migration.cluster.helm
attributes:
  check_mode:
    support: full
    details: Reads which releases and objects are there and reports what would be removed; uninstalls and deletes nothing.
  diff_mode:
    support: full
    details: The Helm releases and objects present before, and none after.
seealso:
  - module: inference_gateway.migration.inferencepool_detect
  - module: inference_gateway.migration.crd_cleanup
  - module: kubernetes.core.helm
"""

EXAMPLES = r"""
- name: Find the preview pools
  inference_gateway.migration.inferencepool_detect:
  register: detected

- name: Remove every preview stack at once
  inference_gateway.migration.preview_stack_removal:
    pools: "{{ detected.alpha_pools }}"
    binary_path: /usr/local/bin/helm
    wait_timeout: 300
"""

RETURN = r"""
uninstalled:
  description: The Helm releases uninstalled (in check mode, that would be), each C(namespace/name).
  returned: always
  type: list
  elements: str
  sample: [team-chat/llama-chat-preview]
deleted:
  description:
    - The objects Helm did not own that were deleted (in check mode, that would be), each C(Kind namespace/name).
  returned: always
  type: list
  elements: str
  sample: [InferenceModel team-chat/chat-assistant, Deployment team-search/rerank-epp]
diff:
  description: The Helm releases and objects of the stacks present before, and after (none).
  returned: when diff mode is on
  type: dict
  sample:
    before:
      helm_releases: [team-chat/llama-chat-preview]
      objects: [InferenceModel team-chat/chat-assistant, InferencePool team-chat/llama-chat]
    after:
      helm_releases: []
      objects: []
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import helm, preview_removal, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    pools=dict(type="list", elements="dict", required=True),
    binary_path=dict(type="path"),
    wait_timeout=dict(type="int", default=waiting.DEFAULT_TIMEOUT),
)


def remove_stacks(module, cluster):
    params = module.params
    binary, env = helm.command_line(module, params["binary_path"])

    def uninstall(release):
        helm.uninstall(binary, release, params["wait_timeout"], env)

    return preview_removal.remove_stacks(cluster, params["pools"], uninstall, params["wait_timeout"])


def main():
    run_module(OPTIONS, remove_stacks)


if __name__ == "__main__":
    main()
