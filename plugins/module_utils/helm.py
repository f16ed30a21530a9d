# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Helm's release records (Helm 3 keeps each release revision in a Secret of the release's namespace), and
``helm uninstall``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json
import subprocess

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.kubernetes.core.plugins.module_utils.helm_args_common import HELM_AUTH_ARG_SPEC
from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError


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


def uninstall(binary, release, timeout, env):
    """``helm uninstall`` one release ({namespace, name}), waiting up to ``timeout`` seconds for its resources to be
    deleted; raises MigrationError with Helm's own words when it fails. ``env`` is the whole environment of the call
    (the connection: KUBECONFIG, HELM_KUBECONTEXT, ...)."""
    command = [binary, "uninstall", release["name"], "--namespace", release["namespace"], "--wait",
               "--timeout", "%ds" % timeout]
    process = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, check=False)
    if process.returncode != 0:
        raise MigrationError("`%s` exited %d: %s" % (" ".join(command), process.returncode,
                                                     (process.stderr or process.stdout).strip()))
    return process.stdout


def connection_params(params, environ):
    """The connection options Helm needs that ``params`` lacks, from the K8S_AUTH_* variables of ``environ``, as
    kubernetes.core.helm reads them. A module with kubernetes.core's k8s options gets no such fallback (its
    Kubernetes client reads the variables itself), so without this an AWX kubeconfig credential, which only sets
    K8S_AUTH_KUBECONFIG, would leave helm on its default cluster."""
    filled = {}
    for name, option in HELM_AUTH_ARG_SPEC.items():
        fallback = option.get("fallback")
        if params.get(name) is not None or not fallback:
            continue
        value = next((environ[variable] for variable in fallback[1] if variable in environ), None)
        if value is not None:
            filled[name] = boolean(value) if option.get("type") == "bool" else value
    return filled
