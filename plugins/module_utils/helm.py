# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Helm's release records (Helm 3 keeps each release revision in a Secret of the release's namespace), running
``helm upgrade --install`` and ``helm uninstall``, and running one Helm command per release for many releases at
once."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.kubernetes.core.plugins.module_utils.helm import AnsibleHelmModule
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


def release_label(release):
    """``namespace/name`` of a release ({namespace, name})."""
    return "%s/%s" % (release["namespace"], release["name"])


def release_secrets(cluster, release):
    """The Secrets that hold the revisions of ``release`` ({namespace, name}); none once it is uninstalled."""
    selector = "%s,%s=%s" % (RELEASE_SECRETS_SELECTOR, api.HELM_RELEASE_NAME_LABEL, release["name"])
    return [secret for secret in cluster.list(api.SECRET, release["namespace"], label_selector=selector) or []
            if is_release_secret(secret, release["name"])]


def newest_revision(cluster, release):
    """The decoded record of the newest revision of ``release`` ({namespace, name}), or None when Helm keeps none."""
    secrets = release_secrets(cluster, release)
    if not secrets:
        return None
    # Helm labels each revision's Secret with its number: only the newest is decoded.
    return decode_release(max(secrets, key=lambda secret: int(secret["metadata"]["labels"].get("version") or 0)))


def failures_message(failures):
    """One line naming every release of ``failures`` ({``namespace/name``: error}) with its error."""
    return "; ".join("%s: %s" % failure for failure in sorted(failures.items()))


def for_each_release(call, releases, meanwhile=None):
    """Run ``call(release)`` for every release at once (one thread each) and ``meanwhile()``, if given, in this
    thread; return what ``meanwhile`` returned and {``namespace/name``: error} of every release whose call raised
    MigrationError. Every call finishes before this returns, failed or not."""
    failures = {}
    with ThreadPoolExecutor(max_workers=max(1, len(releases))) as workers:
        running = [(release, workers.submit(call, release)) for release in releases]
        done = meanwhile() if meanwhile else None
        for release, future in running:
            try:
                future.result()
            except MigrationError as e:
                failures[release_label(release)] = str(e)
    return done, failures


def _run(command, env):
    process = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, check=False)
    if process.returncode != 0:
        raise MigrationError("`%s` exited %d: %s" % (" ".join(command), process.returncode,
                                                     (process.stderr or process.stdout).strip()))
    return process.stdout


def upgrade_install(binary, release, chart_ref, chart_version, values, env):
    """``helm upgrade --install`` one release ({namespace, name}) of ``chart_ref`` (at ``chart_version`` unless
    empty) with exactly ``values``, without waiting for its resources; raises MigrationError with Helm's own words
    when it fails. ``env`` as for uninstall."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as values_file:
        json.dump(values, values_file)
    command = [binary, "upgrade", release["name"], chart_ref, "--install", "--namespace", release["namespace"],
               "--values", values_file.name]
    if chart_version:
        command += ["--version", chart_version]
    try:
        return _run(command, env)
    finally:
        os.unlink(values_file.name)


def uninstall(binary, release, timeout, env):
    """``helm uninstall`` one release ({namespace, name}), waiting up to ``timeout`` seconds for its resources to be
    deleted; raises MigrationError with Helm's own words when it fails. ``env`` is the whole environment of the call
    (the connection: KUBECONFIG, HELM_KUBECONTEXT, ...)."""
    return _run([binary, "uninstall", release["name"], "--namespace", release["namespace"], "--wait",
                 "--timeout", "%ds" % timeout], env)


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


def command_line(module, binary_path):
    """(helm binary, environment) for running Helm from ``module`` (an AnsibleK8SModule with kubernetes.core's
    connection options) as kubernetes.core.helm would connect. Read once, before any thread runs Helm: the first
    read may write a kubeconfig file that the module removes when it exits."""
    # kubernetes.core's helm connection settings need the AnsibleModule itself (run_command, cleanup files), which
    # AnsibleK8SModule wraps.
    ansible_module = module._module
    ansible_module.params.update(connection_params(module.params, os.environ))
    env = dict(os.environ, **AnsibleHelmModule(module=ansible_module).env_update)
    return binary_path or ansible_module.get_bin_path("helm", required=True), env
