# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

"""The checks of the playbooks' inputs; each filter is documented in its sidecar YAML file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.inference_gateway.migration.plugins.module_utils import inputs


class FilterModule(object):
    def filters(self):
        return {"migration_input_errors": inputs.migration_input_errors,
                "pool_selection_errors": inputs.pool_selection_errors}
