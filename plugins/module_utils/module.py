# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What every module of the collection shares: connection options and error handling.

Modules stay thin: they declare their own options, then hand a plain function
to run_module(), which connects, maps refusals and API failures to fail_json,
and exits with the function's result. Calls that succeeded only after the API server
had stopped answering for a while are named in the module's warnings.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import Cluster, ClusterError
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError


def argument_spec(**options):
    """kubernetes.core's connection options (with their K8S_AUTH_* fallbacks) plus the module's own."""
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(options)
    return spec


class _ConnectOnFirstUse(object):
    """Stands for the Cluster and connects when first used, so that a module run that needs no
    API call (an endpoint probe of a given URL) needs no credentials either."""

    def __init__(self, module):
        self._module = module
        self._cluster = None

    def __getattr__(self, name):
        if self._cluster is None:
            self._cluster = Cluster.from_module(self._module)
        return getattr(self._cluster, name)

    @property
    def interruptions(self):
        """The calls that rode over an API server that did not answer (none without a connection)."""
        return self._cluster.interruptions if self._cluster is not None else []


def run_module(options, work, **module_kwargs):
    """Build the module, call ``work(module, cluster)`` and exit with its result dict.

    The cluster connects on first use. A ``diff`` key in the result is returned only when the
    task runs with --diff.
    """
    module = AnsibleK8SModule(argument_spec=argument_spec(**options), supports_check_mode=True, **module_kwargs)
    cluster = _ConnectOnFirstUse(module)
    try:
        try:
            result = work(module, cluster)
        finally:
            # A module cannot print while it runs; its warnings say afterwards, success or failure.
            for interruption in cluster.interruptions:
                module.warn(interruption)
    except MigrationError as e:
        module.fail_json(msg=str(e), **e.details)
    except ClusterError as e:
        module.fail_json(msg=str(e), status=e.status)
    except CoreException as e:
        module.fail_from_exception(e)
    if not module._diff:
        # The plain functions always describe the change; Ansible shows it only with --diff.
        result.pop("diff", None)
    module.exit_json(**result)
