# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: select_pools
short_description: Planning filters of the migration roles
version_added: 1.0.0
description:
  - This file provides the filters C(select_pools), C(finished_pools), C(pending_steps),
    C(split_backends), C(rollback_weight), C(models_needing_rewrite), C(alpha_stack_objects),
    C(pool_namespaces), C(finished_pairs), C(remaining_alpha), C(gate_targets), C(cluster_gate_targets), C(resource_type) and C(model_rewrite_available), which turn an P(inference_gateway.migration.inferencepool_detect#module) result
    into the decisions the migration roles take.
  - C(select_pools(detect, wanted)) returns the preview pools to migrate (all, or those named
    namespace/name); C(pending_steps(weights, pools)) the step weights not yet reached;
    C(split_backends(pair, weight)) the P(inference_gateway.migration.traffic_split#module) backends for
    a step; C(rollback_weight(passed)) the step to return to when a gate fails.
author:
  - Inference Gateway migration maintainers
options:
  _input:
    description: A detect result (C(select_pools), C(finished_pools)), step weights (C(pending_steps)),
      a pool pair (C(split_backends)), passed steps (C(rollback_weight)) or pools.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Shift the first pair to 50 percent
  inference_gateway.migration.traffic_split:
    backends: "{{ pair | inference_gateway.migration.split_backends(50) }}"
  vars:
    pair: {alpha: default/llm-preview, v1: default/llm-ga}
"""

RETURN = r"""
_value:
  description: The planning decision (a list of pools, step weights, backends or a weight).
  type: raw
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.inference_gateway.migration.plugins.module_utils import plan
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError


def _refusing(function):
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except MigrationError as e:
            raise AnsibleFilterError(str(e))

    wrapper.__name__ = function.__name__
    return wrapper


class FilterModule(object):
    def filters(self):
        return dict(
            select_pools=_refusing(plan.select_pools),
            finished_pools=_refusing(plan.finished_pools),
            pending_steps=_refusing(plan.pending_steps),
            split_backends=_refusing(plan.split_backends),
            rollback_weight=plan.rollback_weight,
            models_needing_rewrite=plan.models_needing_rewrite,
            alpha_stack_objects=plan.alpha_stack_objects,
            pool_namespaces=plan.namespaces,
            finished_pairs=plan.finished_pairs,
            remaining_alpha=plan.remaining_alpha,
            gate_targets=_refusing(plan.gate_targets),
            cluster_gate_targets=plan.cluster_gate_targets,
            resource_type=_refusing(plan.resource_type),
            model_rewrite_available=_refusing(plan.model_rewrite_available),
        )
