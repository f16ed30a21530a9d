# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""A small, explicit Kubernetes client for the collection's modules.

It builds on kubernetes.core's client (so every kubernetes.core connection
option and K8S_AUTH_* variable works) but addresses resources by their known
group, version and plural instead of through cached discovery: the migration
adds and removes CRDs while it runs, and a stale discovery cache would hide
that. Objects come back as plain dicts.

Every API call of the collection's modules goes through ``Cluster._request``, and so through
``call_with_retries``: the collection's one home for riding over an API server that does not
answer for a while (a control-plane upgrade or repair restarts it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import time

from ansible_collections.inference_gateway.migration.plugins.module_utils.api import FIELD_MANAGER

try:
    from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError
    from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, NewConnectionError, SSLError
except ImportError:  # AnsibleK8SModule reports the missing library before any call is made

    class DynamicApiError(Exception):
        pass

    class ConflictError(DynamicApiError):
        pass

    class HTTPError(Exception):
        pass

    class MaxRetryError(HTTPError):
        pass

    class NewConnectionError(HTTPError):
        pass

    class ConnectTimeoutError(HTTPError):
        pass

    class SSLError(HTTPError):
        pass


class ClusterError(Exception):
    """An API call failed; the message says which call and why."""

    def __init__(self, message, status=None):
        super(ClusterError, self).__init__(message)
        self.status = status


class Conflict(ClusterError):
    """A write lost a resourceVersion race."""


class Unreachable(ClusterError):
    """The API server did not answer a call for the whole retry time; running again resumes."""


# How long one call keeps trying while the API server does not answer. A kube-apiserver restart
# (a GKE control-plane upgrade or repair, a zonal control plane recreated) refuses connections for
# 10 to 30 s and then answers 503 until its caches are synced; 60 s rides over that with room, and
# an operator still hears of a longer outage within a minute.
UNREACHABLE_SECONDS = 60
# The pause after the first failed attempt; it doubles up to RETRY_MAX_PAUSE, and a Retry-After
# the API server sends (up to the same bound) replaces it.
RETRY_FIRST_PAUSE = 0.5
RETRY_MAX_PAUSE = 5.0
# A connection that is not made in this time is dropped and tried again; an answer that takes longer
# than READ_TIMEOUT means a server that hangs (a list page of 500 objects takes well under a second).
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60

# What a failed attempt tells about the call: the API server refused it before acting on it (no
# connection, 429 Too Many Requests, 503 while it starts), or it may have acted on it (the connection
# broke after the request was sent, no answer in time, 500, 502, 504).
NOT_APPLIED = "not applied"
MAYBE_APPLIED = "may have been applied"
NOT_APPLIED_STATUSES = (429, 503)
MAYBE_APPLIED_STATUSES = (500, 502, 504)


def failed_attempt(error):
    """NOT_APPLIED, MAYBE_APPLIED, or None for an answer that trying again does not change (403, 404, 409...)."""
    if isinstance(error, DynamicApiError):
        status = getattr(error, "status", None)
        if status in NOT_APPLIED_STATUSES:
            return NOT_APPLIED
        return MAYBE_APPLIED if status in MAYBE_APPLIED_STATUSES else None
    if isinstance(error, MaxRetryError):  # urllib3's own few immediate retries ran out: judge the last failure
        return MAYBE_APPLIED if error.reason is None else failed_attempt(error.reason)
    if isinstance(error, (NewConnectionError, ConnectTimeoutError, ConnectionRefusedError)):
        return NOT_APPLIED
    if isinstance(error, SSLError) and "EOF" not in str(error):
        # A certificate the client does not trust stays untrusted; an EOF is a connection closed in the
        # handshake (a proxy or load balancer in front of a stopped API server), judged as any broken one.
        return None
    if isinstance(error, (HTTPError, ConnectionError, socket.timeout)):
        return MAYBE_APPLIED
    return None


def _retry_after(error):
    headers = getattr(error, "headers", None) or {}
    try:
        return float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


class Retried:
    """Where a call stands while the API server does not answer: attempts made, seconds spent, the last failure."""

    def __init__(self, started):
        self.started = started
        self.seconds = 0.0
        self.attempts = 0
        self.last_failure = None
        self.maybe_applied = False


def call_with_retries(call, what, repeatable, seconds=UNREACHABLE_SECONDS, clock=time.monotonic, sleep=time.sleep,
                      on_recovered=None):
    """``call()``, tried again with back-off while the API server does not answer, for ``seconds`` at most.

    A call the API server refused before acting on it (see failed_attempt) is always tried again: nothing
    happened. One that may have been applied is tried again only when ``repeatable``: a read, a write
    guarded by resourceVersion (a replay of an applied write gets 409 Conflict, which the caller's
    read-modify-write resolves by reading again), a delete (a replay finds it gone: 404) or a create (a
    replay gets 409 AlreadyExists, raised as Conflict saying so). Otherwise, or once ``seconds`` have
    passed, it raises Unreachable naming ``what`` (method, path and server). ``on_recovered(retried)``
    hears of a call that succeeded after failed attempts, for the module's warnings.
    """
    retried = Retried(clock())
    pause = RETRY_FIRST_PAUSE
    while True:
        retried.attempts += 1
        try:
            result = call()
        except ConflictError as error:
            if retried.maybe_applied:
                raise Conflict("%s: %s; the API server did not answer an earlier attempt of this call, which may have "
                               "been applied: run again, the next run reads what is there"
                               % (what, _reason(error)), status=409)
            raise
        except Exception as error:  # noqa: BLE001 (failed_attempt sorts what an unreachable API server raises)
            failure = failed_attempt(error)
            if failure is None:
                raise
            # urllib3's MaxRetryError repeats the pool and URL around the failure itself.
            retried.last_failure = _reason(error.reason if isinstance(error, MaxRetryError) and error.reason else error)
            retried.maybe_applied = retried.maybe_applied or failure == MAYBE_APPLIED
            waited = clock() - retried.started
            if failure == MAYBE_APPLIED and not repeatable:
                raise Unreachable("%s: %s; the call may have been applied and is not safe to send twice, so it was "
                                  "not retried; check the object, then run the playbook again"
                                  % (what, retried.last_failure), status=getattr(error, "status", None))
            if waited >= seconds:
                raise Unreachable("%s: the API server was unreachable for %.0f s (%d attempts; last: %s); run the "
                                  "playbook again once it answers: the run resumes where it stopped"
                                  % (what, waited, retried.attempts, retried.last_failure),
                                  status=getattr(error, "status", None))
            sleep(min(_retry_after(error) or pause, RETRY_MAX_PAUSE, seconds - waited))
            pause = min(pause * 2, RETRY_MAX_PAUSE)
            continue
        if retried.attempts > 1 and on_recovered:
            retried.seconds = clock() - retried.started
            on_recovered(retried)
        return result


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

    def __init__(self, dynamic_client, dry_run=False, clock=time.monotonic, sleep=time.sleep):
        self._client = dynamic_client
        self.dry_run = dry_run
        self._served_versions = {}
        self._clock, self._sleep = clock, sleep
        # One line per call that succeeded only after the API server had not answered, for the module's warnings.
        self.interruptions = []

    @classmethod
    def from_module(cls, module):
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

        return cls._connected(lambda: get_api_client(module=module), dry_run=module.check_mode)

    @classmethod
    def from_kubeconfig(cls, kubeconfig, context=None):
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

        return cls._connected(lambda: get_api_client(kubeconfig=kubeconfig, context=context))

    @classmethod
    def _connected(cls, make_client, dry_run=False, clock=time.monotonic, sleep=time.sleep):
        """A Cluster on kubernetes.core's client, which reads /version while it is made: retried as any call."""
        what = "GET /version (making the kubernetes.core client)"
        recovered = []
        k8s_client = call_with_retries(make_client, what, repeatable=True, clock=clock, sleep=sleep,
                                       on_recovered=recovered.append)
        cluster = cls(k8s_client.client, dry_run=dry_run, clock=clock, sleep=sleep)
        cluster.interruptions.extend(cluster._interruption(what, retried) for retried in recovered)
        return cluster

    @staticmethod
    def _interruption(what, retried):
        return "%s answered after %d attempts over %.0f s while the API server was unreachable (%s)" % (
            what, retried.attempts, retried.seconds, retried.last_failure)

    def _server(self):
        """The API server's URL for messages, without the user:password@ a URL may carry."""
        url = getattr(getattr(self._client, "configuration", None), "host", None) or "the API server"
        scheme, separator, rest = url.rpartition("://")
        return scheme + separator + rest.split("@")[-1]

    def _request(self, method, path, body=None, dry_run=None, **params):
        if (self.dry_run if dry_run is None else dry_run) and method in ("post", "put", "patch", "delete"):
            params["dry_run"] = "All"
        what = "%s %s (%s)" % (method.upper(), path, self._server())
        # Safe to send twice (see call_with_retries); a PUT without resourceVersion would overwrite blindly.
        repeatable = method != "patch" and (method != "put" or bool(((body or {}).get("metadata") or {}).get(
            "resourceVersion")))

        try:
            response = call_with_retries(
                lambda: self._client.request(method, path, body=body, serialize=False,
                                             _request_timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **params),
                what, repeatable, clock=self._clock, sleep=self._sleep,
                on_recovered=lambda retried: self.interruptions.append(self._interruption(what, retried)))
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
        return self._request("post", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body, dry_run=False)


def _reason(error):
    body = getattr(error, "body", None)
    if body:
        try:
            return json.loads(body).get("message", body)
        except (TypeError, ValueError):
            return body
    return str(error)
