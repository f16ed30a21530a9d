# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Every module of the collection talks to a cluster through the Kubernetes Python client.
    DOCUMENTATION = r"""
attributes:
  platform:
    platforms: posix
requirements:
  - kubernetes >= 24.2.0
"""

    # Modules that only read the cluster; a module may still give its own check_mode details.
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    details: The module changes nothing in the cluster, so it runs the same in check mode.
  diff_mode:
    support: none
    details: The module changes nothing in the cluster, so there is nothing to diff.
"""

    # Modules that run the helm binary.
    HELM = r"""
options:
  binary_path:
    description:
      - The helm binary. Without it, C(helm) on the PATH.
      - Helm connects with this module's connection options (kubeconfig, context, host, token, CA), as
        M(kubernetes.core.helm) does.
    type: path
"""
