"""The controller loop: poll the API server, program the data plane after the delay, write status."""

import json
import logging
import time

import kubernetes
from kubernetes.client.exceptions import ApiException

from . import api, programme, status
from .snapshot import KEYS, POOL_KEYS, DelayLine, Snapshot

log = logging.getLogger("igw_sandbox.gateway.controller")

_GATEWAY_API = f"/apis/{api.GATEWAY_API_VERSION}"
# snapshot key -> (API prefix, plural, namespaced)
RESOURCES = {
    "gatewayclasses": (_GATEWAY_API, "gatewayclasses", False),
    "gateways": (_GATEWAY_API, "gateways", True),
    "httproutes": (_GATEWAY_API, "httproutes", True),
    "inferencemodels": (f"/apis/{api.ALPHA_GROUP}/{api.POOL_VERSIONS[api.ALPHA_GROUP]}", "inferencemodels", True),
    "services": ("/api/v1", "services", True),
    "deployments": ("/apis/apps/v1", "deployments", True),
    "pods": ("/api/v1", "pods", True),
    **{key: (f"/apis/{group}/{api.POOL_VERSIONS[group]}", "inferencepools", True) for group, key in POOL_KEYS.items()},
}
assert set(RESOURCES) == set(KEYS)


class KubeClient:
    """Plain-JSON list and status-patch calls through the kubernetes client's auth and TLS setup."""

    def __init__(self, kubeconfig):
        self._api = kubernetes.config.new_client_from_config(config_file=kubeconfig)

    def _call(self, method, path, body=None, content_type=None):
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        response = self._api.call_api(path, method, header_params=headers, body=body, auth_settings=["BearerToken"],
                                      _return_http_data_only=True, _preload_content=False, _request_timeout=10)
        return json.loads(response.data)

    def list(self, key):
        """Items of a kind across namespaces, or None when the API server does not serve the kind."""
        prefix, plural, _ = RESOURCES[key]
        try:
            return self._call("GET", f"{prefix}/{plural}")["items"]
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_status(self, update):
        prefix, plural, namespaced = RESOURCES[update.key]
        scope = f"/namespaces/{update.namespace}" if namespaced else ""
        self._call("PATCH", f"{prefix}{scope}/{plural}/{update.name}/status", body={"status": update.status},
                   content_type="application/merge-patch+json")


class Controller:
    def __init__(self, client, dataplane, delay, address):
        self.client = client
        self.dataplane = dataplane
        self.delay = delay
        self.address = address
        self.delay_line = None
        self.programme = None
        self.bind_errors = {}

    def _activate(self, snapshot):
        self.programme = programme.build(snapshot)
        self.bind_errors = self.dataplane.activate(self.programme)
        log.info("programmed: %d gateway(s), %d route(s), ports %s, %d model server pod(s)",
                 len(self.programme.gateways), len(self.programme.attachments), sorted(self.programme.port_owners),
                 len(self.programme.model_servers))

    def poll_once(self, now):
        """One poll; `now` is monotonic time, which the programming delay is measured in."""
        listings = {key: self.client.list(key) for key in KEYS}
        snapshot = Snapshot.from_listings(listings)
        if self.delay_line is None:
            # What exists when the gateway starts counts as already programmed.
            self.delay_line = DelayLine(self.delay, snapshot)
            self._activate(snapshot)
        else:
            self.delay_line.observe(now, snapshot)
            if self.delay_line.advance(now):
                self._activate(self.delay_line.active)
            elif self.bind_errors:
                self.bind_errors = self.dataplane.sync_ports(self.programme.port_owners)
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
        updates += [status.gateway(self.programme, g, self.bind_errors, self.address, now)
                    for g in listings["gateways"] or []]
        updates += [status.http_route(self.programme, r, now) for r in listings["httproutes"] or []]
        for group, key in POOL_KEYS.items():
            updates += [status.inference_pool(self.programme, group, p, now) for p in listings[key] or []]
        return [u for u in updates if u]

    def run(self, stop, poll_interval, on_first_poll):
        first, last_error = True, None
        while not stop.is_set():
            try:
                self.poll_once(time.monotonic())
            except Exception as error:  # noqa: BLE001 - the API server may be restarting; keep the last config
                if repr(error) != last_error:
                    log.exception("poll failed; retrying every %ss", poll_interval)
                last_error = repr(error)
            else:
                last_error = None
                if first:
                    on_first_poll()
                    first = False
            stop.wait(poll_interval)
