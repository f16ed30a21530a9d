# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filters over the preview-to-GA conversions and the EPP manifests; each filter is documented in its sidecar <name>.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import convert, convert_models, epp_manifests
from ansible_collections.inference_gateway.migration.plugins.plugin_utils.filter_errors import refusals_as_filter_errors


FILTERS = (
    convert.v1_pool,
    convert.v1_pool_status,
    convert.ga_release_name,
    epp_manifests.epp_name,
    convert.ga_chart_values,
    epp_manifests.ga_manifests,
    convert_models.objective,
    convert_models.model_warnings,
    convert_models.model_rewrite,
)


class FilterModule(object):
    def filters(self):
        return dict((f.__name__, refusals_as_filter_errors(f)) for f in FILTERS)
