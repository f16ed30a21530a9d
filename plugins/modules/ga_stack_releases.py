#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ga_stack_releases
short_description: Install or upgrade the Helm releases of the v1 InferencePool stacks, every pool at once
version_added: 1.1.0
description:
  - For every v1 stack in O(stacks), installs or upgrades the C(inferencepool) chart release that holds the v1
    pool, its endpoint picker (EPP), RBAC and GKE policies, as the migration guide's C(helm install) does.
  - Every release that needs it is installed or upgraded at the same time, each with C(helm upgrade --install)
    and without waiting for its resources. Wait for the EPP Deployments afterwards
    (M(inference_gateway.migration.readiness)), once for all pools. So installing many stacks costs about as long
    as installing one.
  - A release whose newest revision Helm recorded as deployed, with the same chart version and the same values,
    is left alone, so a second run changes nothing. A release whose last install or upgrade failed is upgraded
    again.
  - When one release fails, the others still finish, and the module fails naming the release and Helm's message.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  stacks:
    description:
      - The v1 stacks, as the P(inference_gateway.migration.ga_plan#filter) filter returns them.
      - The module reads C(namespace), C(release) (the Helm release name), C(chart_values) and C(mode); stacks whose
        C(mode) is not V(helm) are skipped. Other keys are ignored.
    type: list
    elements: dict
    required: true
  chart_ref:
    description:
      - The C(inferencepool) chart - an C(oci://) reference or a local chart directory.
    type: str
    required: true
  chart_version:
    description:
      - The chart version to install, for example V(v1.0.0). Ignored for a local chart directory, whose
        C(Chart.yaml) gives the version.
      - Without it Helm installs the registry's newest chart, and a release is upgraded only when its values change.
    type: str
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
  - inference_gateway.migration.cluster.helm
attributes:
  check_mode:
    support: full
    details: Reads Helm's release records and reports which releases would be installed or upgraded; runs no Helm command.
  diff_mode:
    support: full
    details: The chart version, status and values of each release that changes, before and after.
seealso:
  - module: kubernetes.core.helm
  - module: inference_gateway.migration.readiness
  - module: inference_gateway.migration.preview_stack_removal
"""

EXAMPLES = r"""
- name: Plan the v1 stack of every preview pool
  ansible.builtin.set_fact:
    v1_stacks: "{{ detected.alpha_pools | map('inference_gateway.migration.ga_plan', release='v1.0.0') | list }}"

- name: Install every v1 stack's Helm release at once
  inference_gateway.migration.ga_stack_releases:
    stacks: "{{ v1_stacks }}"
    chart_ref: oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool
    chart_version: v1.0.0

- name: Wait once for every endpoint picker
  inference_gateway.migration.readiness:
    epp_deployments: "{{ v1_stacks | map(attribute='epp_deployment') | list }}"
    wait_timeout: 300
"""

RETURN = r"""
installed:
  description: The releases installed (in check mode, that would be), each C(namespace/name).
  returned: always
  type: list
  elements: str
  sample: [team-chat/llama-chat]
upgraded:
  description:
    - The releases upgraded (in check mode, that would be), each C(namespace/name) - another chart version, other
      values, or a last revision that is not deployed.
  returned: always
  type: list
  elements: str
  sample: [team-search/rerank]
unchanged:
  description: The releases already deployed with this chart version and these values, each C(namespace/name).
  returned: always
  type: list
  elements: str
  sample: []
diff:
  description: For each release that changes, C(namespace/name) to its chart version, status and values.
  returned: when diff mode is on
  type: dict
  sample:
    before:
      team-search/rerank: {chart_version: v1.0.0, status: deployed, values: {inferencePool: {modelServers: {}}}}
    after:
      team-search/rerank: {chart_version: v1.3.0, status: deployed, values: {inferencePool: {modelServers: {}}}}
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import ga_releases, helm
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    stacks=dict(type="list", elements="dict", required=True),
    chart_ref=dict(type="str", required=True),
    chart_version=dict(type="str"),
    binary_path=dict(type="path"),
)


def install_releases(module, cluster):
    params = module.params
    chart_version = ga_releases.chart_version_of(params["chart_ref"], params["chart_version"])
    if cluster.dry_run:
        return ga_releases.install_releases(cluster, params["stacks"], chart_version, None)
    binary, env = helm.command_line(module, params["binary_path"])

    def install(release):
        helm.upgrade_install(binary, release, params["chart_ref"], params["chart_version"], release["values"], env)

    return ga_releases.install_releases(cluster, params["stacks"], chart_version, install)


def main():
    run_module(OPTIONS, install_releases)


if __name__ == "__main__":
    main()
