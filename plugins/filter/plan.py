# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Filters over the migration roles' planning decisions; each filter is documented in its sidecar <name>.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import plan
from ansible_collections.inference_gateway.migration.plugins.plugin_utils.filter_errors import refusals_as_filter_errors


FILTERS = (
    plan.select_pools,
    plan.finished_pools,
    plan.finished_pairs,
    plan.pending_steps,
    plan.split_backends,
    plan.pair_splits,
    plan.rollback_weight,
    plan.models_needing_rewrite,
    plan.alpha_stack_objects,
    plan.leftover_models,
    plan.pool_namespaces,
    plan.remaining_alpha,
    plan.routes_to_missing_alpha,
    plan.unacknowledged_managers,
    plan.last_applied_objects,
    plan.gate_targets,
    plan.pool_gateways,
    plan.cluster_gate_targets,
    plan.resource_type,
    plan.model_rewrite_available,
    plan.model_rewrite_field,
    plan.ga_crd_plan,
    plan.ga_plan,
    plan.ga_stack_record,
)


class FilterModule(object):
    def filters(self):
        return dict((f.__name__, refusals_as_filter_errors(f)) for f in FILTERS)
