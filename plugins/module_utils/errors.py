# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The one exception type the plain functions raise to refuse an operation."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class MigrationError(Exception):
    """A refusal or failure the operator must act on.

    The message names the object and the fix; ``details`` are returned with the
    failed task (for example the list of blockers) so that a playbook or AWX can
    show them.
    """

    def __init__(self, message, **details):
        super(MigrationError, self).__init__(message)
        self.details = details
