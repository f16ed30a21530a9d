# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""GIE release tags, parsed strictly and compared.

What the v1 stack can do depends on its release (the EPP reads
InferenceModelRewrites from v1.3.0 on), so a release that cannot be parsed is
refused rather than guessed at.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

_RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


def parse(release):
    """(major, minor, patch) of a GIE release tag such as v1.0.0; MigrationError for anything else."""
    match = _RELEASE_TAG.match(release) if isinstance(release, str) else None
    if not match:
        raise MigrationError("release %r is not a GIE release tag such as %s" % (release, api.GA_RELEASE))
    return tuple(int(n) for n in match.groups())


def at_least(release, minimum):
    """Whether release is minimum or later; both are release tags."""
    return parse(release) >= parse(minimum)


def epp_reads_model_rewrites(release):
    return at_least(release, api.EPP_READS_MODEL_REWRITES_FROM)
