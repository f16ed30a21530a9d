# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Helm's release records: Helm 3 keeps each release revision in a Secret of the release's namespace."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json

from ansible_collections.inference_gateway.migration.plugins.module_utils import api


def decode_release(secret):
    """The release record Helm keeps in a Secret: base64 (of the Secret) of base64 of gzipped JSON."""
    payload = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    return json.loads(payload.decode("utf-8"))


# The label selector of every Secret that holds a Helm release revision: one list finds the
# records of every release at once, however many releases there are.
RELEASE_SECRETS_SELECTOR = ",".join("%s=%s" % item for item in sorted(api.HELM_RELEASE_OWNER_LABELS.items()))


def is_release_secret(secret, name=None):
    """Whether ``secret`` holds a Helm release revision (of release ``name``, when given)."""
    if secret.get("type") != api.HELM_RELEASE_SECRET_TYPE:
        return False
    return name is None or (secret["metadata"].get("labels") or {}).get(api.HELM_RELEASE_NAME_LABEL) == name
