# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""GKE version strings, parsed and compared.

GKE reports a ``gitVersion`` such as ``v1.34.0-gke.1626000``: the Kubernetes
version followed by a GKE build number. What GKE ships depends on all four
numbers, and neither string order (``1.34.10`` < ``1.34.9``) nor semver (which
reads ``-gke.N`` as a pre-release sorting before ``1.34.0``) compares them
correctly, so they are compared as integer tuples.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import namedtuple

from ansible_collections.inference_gateway.migration.plugins.module_utils import api

_GKE_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)-gke\.(\d+)$")


class GkeVersion(namedtuple("GkeVersion", ["major", "minor", "patch", "build"])):
    """A GKE version; tuple order is release order."""

    __slots__ = ()

    def __str__(self):
        return "%d.%d.%d-gke.%d" % self


def parse(git_version):
    """The GkeVersion in a server's gitVersion, or None when it is not a GKE version."""
    if not isinstance(git_version, str):
        return None
    match = _GKE_VERSION.match(git_version.strip())
    return GkeVersion(*(int(number) for number in match.groups())) if match else None


GA_POOL_CRD_SHIPPED_FROM = parse(api.GKE_SHIPS_GA_POOL_CRD_FROM)


def ships_ga_pool_crd(git_version):
    """Whether GKE at this version installs the v1 InferencePool CRD itself (False when not GKE)."""
    version = parse(git_version)
    return version is not None and version >= GA_POOL_CRD_SHIPPED_FROM
