"""The controller loop: poll what the API server holds, program the data plane after the delay, write status."""

import base64
import json
import logging
import threading
import time

import kubernetes
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from . import api, programme, status
from .snapshot import KEYS, POOL_KEYS, DelayLine, Snapshot

log = logging.getLogger("igw_sandbox.gateway.controller")

# snapshot key -> (group, version, plural, namespaced); the core kinds are listed by typed calls.
RESOURCES = {
    "gatewayclasses": (api.GATEWAY_GROUP, api.GATEWAY_VERSION, "gatewayclasses", False),
    "gateways": (api.GATEWAY_GROUP, api.GATEWAY_VERSION, "gateways", True),
    "httproutes": (api.GATEWAY_GROUP, api.GATEWAY_VERSION, "httproutes", True),
    "referencegrants": (api.GATEWAY_GROUP, api.REFERENCE_GRANT_VERSION, "referencegrants", True),
    "inferencemodels": (api.ALPHA_GROUP, api.POOL_VERSIONS[api.ALPHA_GROUP], "inferencemodels", True),
    **{key: (group, api.POOL_VERSIONS[group], "inferencepools", True) for group, key in POOL_KEYS.items()},
}
CORE_KEYS = ("services", "deployments", "pods")
assert set(RESOURCES) | set(CORE_KEYS) == set(KEYS)
REQUEST_TIMEOUT_SECONDS = 10
# How long one watch request lasts before the kind is listed and watched again.
WATCH_SECONDS = 300


class KubeClient:
    """Lists as plain JSON and merge-patches status, with the kubernetes client's auth and TLS."""

    def __init__(self, kubeconfig):
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        # A connection for each watch (one per kind), and some for status writes and the endpoint pickers' reads.
        configuration.connection_pool_maxsize = len(KEYS) + 8
        client = kubernetes.client.ApiClient(configuration)
        self._custom = kubernetes.client.CustomObjectsApi(client)
        core, apps = kubernetes.client.CoreV1Api(client), kubernetes.client.AppsV1Api(client)
        self._core = core
        self._core_lists = {"services": core.list_service_for_all_namespaces,
                            "deployments": apps.list_deployment_for_all_namespaces,
                            "pods": core.list_pod_for_all_namespaces}

    def _list_call(self, key, **options):
        """The raw response of a list (or, with watch=True, watch) call for a kind across namespaces."""
        options.update(_preload_content=False)
        if key in self._core_lists:
            return self._core_lists[key](**options)
        return self._custom.list_cluster_custom_object(*RESOURCES[key][:3], **options)

    def list(self, key):
        """(items of a kind across namespaces, the list's resourceVersion), or (None, None) when the API server
        does not serve the kind."""
        try:
            response = self._list_call(key, _request_timeout=REQUEST_TIMEOUT_SECONDS)
        except ApiException as error:
            if error.status == 404:
                return None, None
            raise
        listing = json.loads(response.data)
        return listing["items"], listing["metadata"].get("resourceVersion")

    def watch(self, key, resource_version, seconds):
        """The watch events ({"type", "object"}) of a kind from `resource_version` on, for up to `seconds`."""
        response = self._list_call(key, watch=True, resource_version=resource_version, timeout_seconds=seconds,
                                   allow_watch_bookmarks=True,
                                   _request_timeout=(REQUEST_TIMEOUT_SECONDS, seconds + REQUEST_TIMEOUT_SECONDS))
        try:
            for line in iter_resp_lines(response):
                yield json.loads(line)
        finally:
            response.release_conn()

    def read_config_map(self, namespace, name):
        """{key: text or bytes} of a ConfigMap, for an EPP's volume."""
        config_map = self._core.read_namespaced_config_map(name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS)
        files = dict(config_map.data or {})
        files.update({key: base64.b64decode(value) for key, value in (config_map.binary_data or {}).items()})
        return files

    def read_secret(self, namespace, name):
        """{key: base64 text} of a Secret, for an EPP's volume."""
        return self._core.read_namespaced_secret(name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS).data or {}

    def service_account_token(self, namespace, service_account, pod, seconds):
        """A token for the ServiceAccount bound to ``pod``, from the TokenRequest API, as the kubelet gets one."""
        request = kubernetes.client.AuthenticationV1TokenRequest(spec=kubernetes.client.V1TokenRequestSpec(
            audiences=[], expiration_seconds=seconds,
            bound_object_ref=kubernetes.client.V1BoundObjectReference(
                api_version="v1", kind="Pod", name=pod["metadata"]["name"], uid=pod["metadata"]["uid"])))
        response = self._core.create_namespaced_service_account_token(service_account, namespace, request,
                                                                      _request_timeout=REQUEST_TIMEOUT_SECONDS)
        return response.status.token

    def patch_status(self, update):
        group, version, plural, namespaced = RESOURCES[update.key]
        body = {"status": update.status}
        if namespaced:
            self._custom.patch_namespaced_custom_object_status(group, version, update.namespace, plural,
                                                               update.name, body)
        else:
            self._custom.patch_cluster_custom_object_status(group, version, plural, update.name, body)


class WatchedLists:
    """The items of each kind the gateway reads, as the API server holds them: one thread per kind lists it, then
    follows its watch events, and lists it again when the watch ends or fails (as an informer does). A poll then
    reads memory instead of listing every kind from the API server four times a second, which kept the API server
    and the gateway of every idle sandbox busy."""

    def __init__(self, client, keys, stop, retry_seconds):
        """Reads through `client` (KubeClient) until `stop` is set; a kind the API server does not serve (its CRD
        is not installed) or cannot be reached is listed again every `retry_seconds`."""
        self._client = client
        self._stop = stop
        self._retry_seconds = retry_seconds
        self._items = {}  # key -> {uid: object}, or None while the API server does not serve the kind
        self._lock = threading.Lock()
        for key in keys:
            threading.Thread(target=self._follow, args=(key,), name=f"watch {key}", daemon=True).start()

    def list(self, key):
        """Items of a kind across namespaces, or None when the API server does not serve the kind; raises
        NotListedYet before the kind's first list has answered."""
        with self._lock:
            if key not in self._items:
                raise NotListedYet(key)
            items = self._items[key]
            return None if items is None else list(items.values())

    def _follow(self, key):
        failing = False
        while not self._stop.is_set():
            try:
                items, version = self._client.list(key)
                if failing:
                    log.info("listing %s again", key)
                    failing = False
                self._replace(key, items)
                if items is None:
                    self._stop.wait(self._retry_seconds)
                    continue
                for event in self._client.watch(key, version, WATCH_SECONDS):
                    if self._stop.is_set() or not self._apply(key, event):
                        break
            except Exception as error:  # noqa: BLE001 - the API server may be restarting: list again soon
                if not failing:
                    log.warning("listing or watching %s failed; retrying every %ss until it answers: %r", key,
                                self._retry_seconds, error)
                    failing = True
                self._stop.wait(self._retry_seconds)

    def _replace(self, key, items):
        with self._lock:
            self._items[key] = None if items is None else {item["metadata"]["uid"]: item for item in items}

    def _apply(self, key, event):
        """Applies one watch event; False when the watch must end (an ERROR event, such as 410 Gone)."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            log.info("watch of %s ended: %s", key, obj.get("message"))
            return False
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            with self._lock:
                items = self._items.get(key)
                if items is not None:
                    if kind == "DELETED":
                        items.pop(obj["metadata"]["uid"], None)
                    else:
                        items[obj["metadata"]["uid"]] = obj
        return True


class NotListedYet(Exception):
    """A kind whose first list has not answered yet: the gateway does not program half a cluster."""


class Controller:
    def __init__(self, client, lists, dataplane, delay, address, pods=()):
        """`client` writes status (KubeClient); `lists` gives the items of each kind (WatchedLists); `delay`:
        seconds, or a function drawing each change's delay (see DelayLine); `address`: the sandbox's own, which
        its oldest Gateway gets (the others get their neighbours); `pods`: what runs the pods (model servers,
        endpoint pickers), each with sync(raw pod list), kept in step at every poll."""
        self.client = client
        self.lists = lists
        self.dataplane = dataplane
        self.pods = pods
        self.delay = delay
        self.address = address
        self.delay_line = None
        self.programme = None
        self.bind_errors = {}

    def _activate(self, snapshot):
        self.programme = programme.build(snapshot, self.address, self.programme and self.programme.addresses)
        self.bind_errors = self.dataplane.activate(self.programme)
        log.info("programmed: %d gateway(s), %d route(s), listening on %s",
                 len(self.programme.gateways), len(self.programme.attachments),
                 ", ".join("%s:%d" % endpoint for endpoint in sorted(self.programme.endpoints)))

    def poll_once(self, now, stop):
        """One poll; `now` is monotonic time, which the programming delay is measured in."""
        if stop.is_set():
            return
        listings = {key: self.lists.list(key) for key in KEYS}
        # Pods run as soon as the API server lists them ready; only the load balancer waits for programming.
        for runner in self.pods:
            runner.sync(listings["pods"])
        snapshot = Snapshot.from_listings(listings)
        if self.delay_line is None:
            # What exists when the gateway starts counts as already programmed.
            self.delay_line = DelayLine(self.delay, snapshot)
            self._activate(snapshot)
        else:
            delay = self.delay_line.observe(now, snapshot)
            if delay is not None:
                log.info("change seen; programmed in %.2fs unless a newer change is programmed first", delay)
            if self.delay_line.advance(now):
                self._activate(self.delay_line.active)
            elif self.bind_errors:
                self.bind_errors = self.dataplane.sync_listeners(self.programme.endpoints)
        for update in self._status_updates(listings, time.time()):
            try:
                self.client.patch_status(update)
                log.info("status of %s %s/%s: %s", update.key, update.namespace, update.name,
                         json.dumps(update.status)[:400])
            except ApiException as error:
                # Deleted or changed meanwhile: the next poll recomputes it.
                log.warning("status of %s %s/%s not written: %s", update.key, update.namespace, update.name,
                            error.reason)

    def _status_updates(self, listings, now):
        updates = [status.gateway_class(c, now) for c in listings["gatewayclasses"] or []]
        updates += [status.gateway(self.programme, g, self.bind_errors, now)
                    for g in listings["gateways"] or []]
        updates += [status.http_route(self.programme, r, now) for r in listings["httproutes"] or []]
        for group, key in POOL_KEYS.items():
            updates += [status.inference_pool(self.programme, group, p, now) for p in listings[key] or []]
        return [u for u in updates if u]

    def run(self, stop, poll_interval, on_first_poll):
        first, last_error = True, None
        while not stop.is_set():
            try:
                self.poll_once(time.monotonic(), stop)
            except NotListedYet:
                pass  # the first lists are still on their way
            except Exception as error:  # noqa: BLE001 - the API server may be restarting; keep the last config
                if repr(error) != last_error:
                    log.exception("poll failed; retrying every %ss", poll_interval)
                last_error = repr(error)
            else:
                last_error = None
                if first and not stop.is_set():
                    on_first_poll()
                    first = False
            stop.wait(poll_interval)
