# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Shared by the collection's filter plugins (controller side only)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools

from ansible.errors import AnsibleFilterError
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError


def refusals_as_filter_errors(function):
    """Let a plain function's MigrationError reach the playbook as a filter error with the same message."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except MigrationError as e:
            raise AnsibleFilterError(str(e))

    return wrapper
