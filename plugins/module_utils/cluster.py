# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A small, explicit Kubernetes client for the collection's modules.

It builds on kubernetes.core's client (so every kubernetes.core connection
option and K8S_AUTH_* variable works) but addresses resources by their known
group, version and plural instead of through cached discovery: the migration
adds and removes CRDs while it runs, and a stale discovery cache would hide
that. Objects come back as plain dicts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.inference_gateway.migration.plugins.module_utils.api import FIELD_MANAGER

try:
    from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError
except ImportError:  # AnsibleK8SModule reports the missing library before any call is made

    class DynamicApiError(Exception):
        pass

    class ConflictError(DynamicApiError):
        pass


class ClusterError(Exception):
    """An API call failed; the message says which call and why."""

    def __init__(self, message, status=None):
        super(ClusterError, self).__init__(message)
        self.status = status


class Conflict(ClusterError):
    """A write lost a resourceVersion race."""


# Objects per list request: kubectl's default --chunk-size. Bounds each response (and the
# memory a list needs beyond what the caller keeps) whatever the size of the cluster.
PAGE_SIZE = 500


def paged(fetch_page, what, keep=None, page_size=PAGE_SIZE):
    """Every item of a list read ``page_size`` at a time: the one paging loop of the collection.

    ``fetch_page(limit, continue_token)`` returns (items, next continue token or None). Only
    the items ``keep`` accepts are held, so memory is one page plus what the caller wants.
    A continue token can expire (410 Gone) when the list takes longer than the API server
    keeps its snapshot (about five minutes by default): the list restarts from the beginning
    once, dropping what the abandoned pass kept, so no object is returned twice; a second
    expiry fails, naming ``what``.
    """
    for attempt in (1, 2):
        kept, token = [], None
        try:
            while True:
                items, token = fetch_page(page_size, token)
                kept.extend(item for item in items if keep is None or keep(item))
                if not token:
                    return kept
        except ClusterError as e:
            # ``token`` is still the one the failed request carried.
            if e.status != 410 or token is None:
                raise
            if attempt == 2:
                raise ClusterError(
                    "listing %s: the continue token expired twice (410 Gone); the objects change faster than "
                    "they can be read %d at a time; run again" % (what, page_size), status=410)


def _collection_path(rtype, namespace=None):
    prefix = "/apis/%s/%s" % (rtype.group, rtype.version) if rtype.group else "/api/%s" % rtype.version
    if namespace:
        prefix += "/namespaces/%s" % namespace
    return "%s/%s" % (prefix, rtype.plural)


def _object_path(rtype, name, namespace=None):
    return "%s/%s" % (_collection_path(rtype, namespace), name)


def describe(rtype, name=None, namespace=None):
    """Human name of an object or a collection, for messages."""
    what = "%s %s" % (rtype.kind, rtype.api_version)
    if name:
        what += " %s/%s" % (namespace, name) if namespace else " %s" % name
    return what


class Cluster:
    """Reads and writes plain dicts; writes honour check mode as server-side dry runs."""

    def __init__(self, dynamic_client, dry_run=False):
        self._client = dynamic_client
        self.dry_run = dry_run
        self._served_versions = {}

    @classmethod
    def from_module(cls, module):
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

        k8s_client = get_api_client(module=module)
        return cls(k8s_client.client, dry_run=module.check_mode)

    @classmethod
    def from_kubeconfig(cls, kubeconfig, context=None):
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

        return cls(get_api_client(kubeconfig=kubeconfig, context=context).client)

    def _request(self, method, path, body=None, **params):
        if self.dry_run and method in ("post", "put", "patch", "delete"):
            params["dry_run"] = "All"
        try:
            response = self._client.request(method, path, body=body, serialize=False, **params)
        except ConflictError as e:
            raise Conflict("%s %s: %s" % (method.upper(), path, _reason(e)), status=409)
        except DynamicApiError as e:
            raise ClusterError("%s %s failed: %s" % (method.upper(), path, _reason(e)), status=getattr(e, "status", None))
        return json.loads(response.data.decode("utf-8")) if response.data else {}

    def server_version(self):
        return self._request("get", "/version")

    def served(self, rtype):
        """Whether the API server serves this group/version/kind right now."""
        key = (rtype.group, rtype.version)
        if key not in self._served_versions:
            path = "/apis/%s/%s" % key if rtype.group else "/api/%s" % rtype.version
            try:
                resources = self._request("get", path).get("resources", [])
            except ClusterError as e:
                if e.status != 404:
                    raise
                resources = []
            self._served_versions[key] = set(r["name"] for r in resources)
        return rtype.plural in self._served_versions[key]

    def forget_discovery(self):
        self._served_versions.clear()

    def list(self, rtype, namespace=None, label_selector=None, keep=None):
        """Every object of a type (across all namespaces by default) that ``keep`` accepts (all by
        default), read in pages (see paged); None when the type is not served."""
        if not self.served(rtype):
            return None
        path = _collection_path(rtype, namespace)

        def fetch_page(limit, token):
            result = self._request("get", path, label_selector=label_selector, limit=limit, _continue=token)
            items = result.get("items", [])
            for item in items:
                item.setdefault("apiVersion", rtype.api_version)
                item.setdefault("kind", rtype.kind)
            return items, (result.get("metadata") or {}).get("continue") or None

        try:
            return paged(fetch_page, describe(rtype), keep)
        except ClusterError as e:
            if e.status == 404:
                return None
            raise

    def get(self, rtype, name, namespace=None):
        """One object, or None when it (or its type) does not exist."""
        try:
            return self._request("get", _object_path(rtype, name, namespace))
        except ClusterError as e:
            if e.status == 404:
                return None
            raise

    def create(self, rtype, body):
        namespace = body.get("metadata", {}).get("namespace")
        return self._request("post", _collection_path(rtype, namespace), body=body, field_manager=FIELD_MANAGER)

    def replace(self, rtype, body):
        """Write a whole object; the API refuses it if metadata.resourceVersion is stale."""
        metadata = body["metadata"]
        return self._request("put", _object_path(rtype, metadata["name"], metadata.get("namespace")), body=body,
                             field_manager=FIELD_MANAGER)

    def delete(self, rtype, name, namespace=None, resource_version=None, propagation_policy="Background"):
        """Delete one object; True if a delete was sent, False if it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation_policy}
        if resource_version:
            body["preconditions"] = {"resourceVersion": resource_version}
        if self.dry_run:
            # With a DeleteOptions body the API server reads dryRun from the body, not the query.
            body["dryRun"] = ["All"]
        try:
            self._request("delete", _object_path(rtype, name, namespace), body=body)
        except ClusterError as e:
            if e.status == 404:
                return False
            raise
        return True

    def create_review(self, body):
        """POST a SelfSubjectAccessReview (never a dry run: it changes nothing)."""
        try:
            response = self._client.request(
                "post", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body, serialize=False
            )
        except DynamicApiError as e:
            raise ClusterError("access review failed: %s" % _reason(e), status=getattr(e, "status", None))
        return json.loads(response.data.decode("utf-8"))


def _reason(error):
    body = getattr(error, "body", None)
    if body:
        try:
            return json.loads(body).get("message", body)
        except (TypeError, ValueError):
            return body
    return str(error)
