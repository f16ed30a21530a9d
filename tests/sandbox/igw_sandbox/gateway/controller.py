"""The controller loop: poll the API server, program the data plane after the delay, write status."""

import base64
import json
import logging
import time

import kubernetes
from kubernetes.client.exceptions import ApiException

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


class KubeClient:
    """Lists as plain JSON and merge-patches status, with the kubernetes client's auth and TLS."""

    def __init__(self, kubeconfig):
        client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        self._custom = kubernetes.client.CustomObjectsApi(client)
        core, apps = kubernetes.client.CoreV1Api(client), kubernetes.client.AppsV1Api(client)
        self._core = core
        self._core_lists = {"services": core.list_service_for_all_namespaces,
                            "deployments": apps.list_deployment_for_all_namespaces,
                            "pods": core.list_pod_for_all_namespaces}

    def list(self, key):
        """Items of a kind across namespaces, or None when the API server does not serve the kind."""
        options = {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT_SECONDS}
        try:
            if key in self._core_lists:
                response = self._core_lists[key](**options)
            else:
                response = self._custom.list_cluster_custom_object(*RESOURCES[key][:3], **options)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return json.loads(response.data)["items"]

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


class Controller:
    def __init__(self, client, dataplane, delay, address, pods=()):
        """`delay`: seconds, or a function drawing each change's delay (see DelayLine); `address`: the sandbox's
        own, which its oldest Gateway gets (the others get their neighbours); `pods`: what runs the pods (model
        servers, endpoint pickers), each with sync(raw pod list), kept in step at every poll."""
        self.client = client
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
        """One poll; `now` is monotonic time, which the programming delay is measured in.
        Gives up between API calls once `stop` is set, so that SIGTERM is handled promptly."""
        listings = {}
        for key in KEYS:
            if stop.is_set():
                return
            listings[key] = self.client.list(key)
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
