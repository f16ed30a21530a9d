# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Installing the CRDs a cluster lacks, and only those.

A CRD that exists is never written: GKE manages the v1 InferencePool CRD from
1.34.0-gke.1626000 on and reconciles it, and the preview stack depends on the
alpha CRDs, which this refuses to touch at all. Everything is read and checked
before the first write.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import ClusterError
from ansible_collections.inference_gateway.migration.plugins.module_utils.conditions import crd_established
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

try:
    import yaml
except ImportError:  # the module reports the missing library
    yaml = None

CRD_FILE_SUFFIXES = (".yaml", ".yml", ".json")
ALREADY_EXISTS = 409


def upstream_url(name, release, download_url=api.GIE_DOWNLOAD_URL):
    """Where the release (or a mirror of it at ``download_url``) publishes one CRD of ours."""
    for resource in api.INFERENCE_CRDS:
        if resource.crd_name == name:
            return "%s/%s" % (download_url.rstrip("/"), api.CRD_FILE_PATH % (release, api.crd_file_name(resource)))
    raise MigrationError("No upstream URL is known for CRD %s; give src (a file or directory holding it)" % name)


def crd_files(src):
    """The YAML files under ``src`` (a file, or a directory read non-recursively), in name order."""
    if os.path.isdir(src):
        files = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(CRD_FILE_SUFFIXES))
        if not files:
            raise MigrationError("CRD source directory %s holds no .yaml, .yml or .json file" % src)
        return files
    if os.path.isfile(src):
        return [src]
    raise MigrationError("CRD source %s is neither a file nor a directory" % src)


def crds_in(text, origin):
    """name -> CRD of every CustomResourceDefinition in a YAML stream."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise MigrationError("%s is not valid YAML: %s" % (origin, e))
    found = {}
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == api.CRD.kind and \
                document.get("apiVersion") == api.CRD.api_version:
            found[document["metadata"]["name"]] = document
    return found


def _local_crds(src):
    found = {}
    for path in crd_files(src):
        with open(path) as handle:
            for name, crd in crds_in(handle.read(), path).items():
                found[name] = (crd, path)
    return found


def load_crds(names, release, src, fetch, download_url=api.GIE_DOWNLOAD_URL):
    """name -> (CRD, where it came from) for each of ``names``, from src or the release's downloads."""
    if src:
        available = _local_crds(src)
        missing = [name for name in names if name not in available]
        if missing:
            raise MigrationError("CRD source %s holds no CustomResourceDefinition named %s; point src at the "
                                 "config/crd/bases directory of GIE %s or a file with these CRDs"
                                 % (src, ", ".join(missing), release))
        return dict((name, available[name]) for name in names)
    loaded = {}
    for name in names:
        url = upstream_url(name, release, download_url)
        crds = crds_in(fetch(url), url)
        if name not in crds:
            raise MigrationError("%s does not hold CRD %s; check release %s" % (url, name, release))
        loaded[name] = (crds[name], url)
    return loaded


def _for_create(crd):
    body = dict((k, v) for k, v in crd.items() if k != "status")
    metadata = dict(body["metadata"])
    metadata["labels"] = dict(metadata.get("labels") or {}, **{api.MIGRATION_LABEL: api.MIGRATION_LABEL_VALUE})
    body["metadata"] = metadata
    return body


def refuse_alpha(names):
    alpha = [name for name in names if name in api.ALPHA_CRDS]
    if alpha:
        raise MigrationError("Refusing to install %s: the running preview stack depends on the alpha CRDs, which "
                             "this module never touches. Remove them from names." % ", ".join(alpha))


def wait_established(cluster, names, timeout, sleep=time.sleep, clock=time.monotonic):
    polled = waiting.poll(lambda: [name for name in names if not crd_established(cluster.get(api.CRD, name))],
                          lambda pending: not pending, timeout, clock=clock, sleep=sleep)
    if not polled.done:
        raise MigrationError("CRD %s not Established after %ss; check the API server log (kubectl describe crd)"
                             % (", ".join(polled.value), timeout), waiting=polled.value)


def ensure_crds(cluster, names, release=api.GA_RELEASE, src=None, wait_timeout=waiting.DEFAULT_TIMEOUT, fetch=None,
                diff=False, sleep=time.sleep, download_url=api.GIE_DOWNLOAD_URL):
    """Create those of ``names`` the cluster lacks and wait until all are Established.

    ``fetch(url) -> text`` reads the release's downloads (under ``download_url``) when there is no ``src``.
    In check mode (a dry-run cluster) the creates are server-side dry runs and
    nothing is waited for.
    """
    names = list(dict.fromkeys(names or []))
    if not names:
        raise MigrationError("names is empty: list the CRDs to ensure, e.g. %s" % api.INFERENCE_OBJECTIVE.crd_name)
    refuse_alpha(names)
    present = [name for name in names if cluster.get(api.CRD, name) is not None]
    missing = [name for name in names if name not in present]
    loaded = load_crds(missing, release, src, fetch, download_url) if missing else {}
    installed, kept = [], list(present)
    for name in missing:
        try:
            cluster.create(api.CRD, _for_create(loaded[name][0]))
        except ClusterError as e:
            if e.status != ALREADY_EXISTS:
                raise
            kept.append(name)  # created meanwhile by someone else: theirs, not ours
            continue
        installed.append(name)
    if not cluster.dry_run:
        cluster.forget_discovery()
        wait_established(cluster, names, wait_timeout, sleep=sleep)
    result = {
        "changed": bool(installed),
        "installed": installed,
        "kept": kept,
        "source": dict((name, loaded[name][1]) for name in installed),
    }
    if diff:
        result["diff"] = {"before": {"crds": sorted(present)}, "after": {"crds": sorted(present + installed)}}
    return result
