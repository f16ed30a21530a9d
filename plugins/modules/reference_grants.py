#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: reference_grants
short_description: Let the routes that may reach a preview InferencePool across namespaces reach its v1 pool too
version_added: 1.1.0
description:
  - An HTTPRoute backendRef into another namespace is honoured only when a Gateway API ReferenceGrant in the
    backend's namespace allows it, and a grant names the API group it allows. A grant written for the preview
    pools (C(inference.networking.x-k8s.io)) does not cover the v1 pools (C(inference.networking.k8s.io)), so a v1
    backendRef added beside the preview one would be refused (C(ResolvedRefs) False, reason C(RefNotPermitted)).
  - For every ReferenceGrant in the namespace of a pool pair whose C(to) allows the preview pool (by name, or
    every InferencePool of the preview group), adds the v1 counterpart (the v1 pool's name, or every v1
    InferencePool). The C(from) list is left as it is, so the same routes are allowed.
  - With O(remove_spent_preview_entries), also removes the preview entries that allow nothing any more (a named
    entry whose preview pool is gone, or an entry without a name once no preview pool is left in the namespace),
    each only when the grant allows its v1 counterpart.
  - Every grant is written with its C(resourceVersion) (read again and re-planned after a lost race) and field
    manager C(inference-gateway-migration). Grants of other namespaces and entries for other kinds are not
    touched. Does nothing when the cluster does not serve ReferenceGrants.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  pairs:
    description:
      - The preview and v1 pools of the migration, as the ga_stack role records them (C(ga_stack_created)).
      - Each has C(alpha), the preview pool as C(namespace/name), and C(v1), its v1 pool in the same namespace.
        Other keys are ignored.
    type: list
    elements: dict
    required: true
  remove_spent_preview_entries:
    description:
      - Also remove the preview entries that allow nothing any more (after the preview pools are removed).
    type: bool
    default: false
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
attributes:
  check_mode:
    support: full
    details: Sends every write as a server-side dry run and reports what would change.
  diff_mode:
    support: full
    details: The C(to) list of every grant changed, before and after.
seealso:
  - module: inference_gateway.migration.traffic_split
  - name: Gateway API ReferenceGrant
    description: Cross-namespace references and the grants that allow them.
    link: https://gateway-api.sigs.k8s.io/api-types/referencegrant/
"""

EXAMPLES = r"""
- name: Let routes that reach the platform's preview pools across namespaces reach the v1 pools too
  inference_gateway.migration.reference_grants:
    pairs:
      - alpha: platform/shared-llama
        v1: platform/shared-llama-ga

- name: Once the preview pools are gone, drop the grant entries that allowed only them
  inference_gateway.migration.reference_grants:
    pairs:
      - alpha: platform/shared-llama
        v1: platform/shared-llama-ga
    remove_spent_preview_entries: true
"""

RETURN = r"""
grants:
  description: Every grant changed (or, in check mode, that would change), with the C(to) entries added and removed.
  returned: always
  type: list
  elements: dict
  sample: [{"namespace": "platform", "name": "chat-routes-to-shared-pools",
            "added": [{"group": "inference.networking.k8s.io", "kind": "InferencePool"}], "removed": []}]
diff:
  description: The C(to) list of each grant changed, keyed C(ReferenceGrant namespace/name).
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import reference_grants
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    pairs=dict(type="list", elements="dict", required=True),
    remove_spent_preview_entries=dict(type="bool", default=False),
)


def update_grants(module, cluster):
    return reference_grants.update_grants(cluster, module.params["pairs"],
                                          module.params["remove_spent_preview_entries"])


def main():
    run_module(OPTIONS, update_grants)


if __name__ == "__main__":
    main()
