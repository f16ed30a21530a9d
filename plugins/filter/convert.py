# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filters over the preview-to-GA conversions; each filter is documented in its sidecar <name>.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools

from ansible.errors import AnsibleFilterError
from ansible_collections.inference_gateway.migration.plugins.module_utils import convert
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError


def _refusals_as_filter_errors(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except MigrationError as e:
            raise AnsibleFilterError(str(e))

    return wrapper


FILTERS = (
    convert.v1_pool,
    convert.v1_pool_status,
    convert.ga_release_name,
    convert.epp_name,
    convert.ga_chart_values,
    convert.ga_manifests,
    convert.objective,
    convert.model_warnings,
    convert.model_rewrite,
    convert.rewrite_target_field,
    convert.ga_crd_plan,
    convert.ga_plan,
)


class FilterModule(object):
    def filters(self):
        return dict((f.__name__, _refusals_as_filter_errors(f)) for f in FILTERS)
