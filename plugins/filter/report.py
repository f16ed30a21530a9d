# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""Filters that write what a run reports: the cluster report, detect's summary, the preview objects left
behind; each filter is documented in its sidecar <name>.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import detect_summary, leftovers, objects, report
from ansible_collections.inference_gateway.migration.plugins.plugin_utils.filter_errors import refusals_as_filter_errors


FILTERS = (
    report.cluster_report,
    report.route_change,
    report.grant_changes,
    report.split_routes,
    report.with_written_weights,
    detect_summary.detect_summary,
    leftovers.preview_leftovers,
    leftovers.leftovers_message,
    objects.qualified_names,
)


class FilterModule(object):
    def filters(self):
        return dict((f.__name__, refusals_as_filter_errors(f)) for f in FILTERS)
