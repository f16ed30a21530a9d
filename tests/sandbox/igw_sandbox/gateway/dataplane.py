"""The simulated load balancer: one HTTP listener per Gateway address and port.

Each request is matched against the active Programme's route table for its address and port and sent to a
backend chosen by weight. For an InferencePool the pool's endpoint picker decides, over Envoy's
ext_proc protocol as GKE's load balancer asks it through its service extension: the epp-relay
process (epp_relay.py) holds that exchange, forwards to the pod the EPP names and answers with
what the client gets. When the EPP cannot be reached or fails, the pool's failureMode decides
here: FailClose answers 503, FailOpen forwards to a ready pod. The listeners are loopback sockets
of the host; pods and EPPs are dialled at their addresses inside the sandbox's pod network
(netns.py).
"""

import http.client
import ipaddress
import json
import logging
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from ..modelserver import POD_HEADER, POOL_HEADER, SandboxHTTPServer
from . import api, routing
from .backends import Failure, PoolBackend
from .epp_relay import (EPP_FAILED, IMMEDIATE, MESSAGE_TIMEOUT_SECONDS, RELAY_ENDPOINT_HEADER, RELAY_EPP_HEADER,
                        RELAY_EPP_POD_HEADER, RELAY_HEADERS, RELAY_OUTCOME_HEADER, RELAY_WARNING_HEADER,
                        UPSTREAM_FAILED)

log = logging.getLogger("igw_sandbox.gateway.dataplane")

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length", "host"}
# The gateway writes these itself.
_NOT_RELAYED = _HOP_BY_HOP | {"server", "date", POOL_HEADER, POD_HEADER} | RELAY_HEADERS
UPSTREAM_TIMEOUT_SECONDS = 60
# The relay answers within both ext_proc phases and the upstream request.
RELAY_TIMEOUT_SECONDS = UPSTREAM_TIMEOUT_SECONDS + 4 * MESSAGE_TIMEOUT_SECONDS
# The reason the sandbox gives (x-sandbox-failure) when the EPP answered a request itself.
EPP_RESPONSE = "EndpointPickerResponse"


class Stats:
    """What the gateway answered, for comparison with what clients saw."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests = 0
        self.by_status = {}
        self.by_pool = {}
        self.by_pod = {}
        self.failures = {}

    def record(self, status, pool=None, pod=None, failure=None):
        code = str(status)
        with self._lock:
            self.requests += 1
            self.by_status[code] = self.by_status.get(code, 0) + 1
            if pool:
                per_pool = self.by_pool.setdefault(pool, {})
                per_pool[code] = per_pool.get(code, 0) + 1
            if pod:
                self.by_pod[pod] = self.by_pod.get(pod, 0) + 1
            if failure:
                self.failures[failure] = self.failures.get(failure, 0) + 1

    def as_dict(self):
        with self._lock:
            return {"requests": self.requests, "by_status": dict(self.by_status),
                    "by_pool": {pool: dict(codes) for pool, codes in self.by_pool.items()},
                    "by_pod": dict(self.by_pod), "failures": dict(self.failures)}


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class _Connections(threading.local):
    """Per-thread keep-alive connections: to the model-server simulators at (ip, port) and to the EPP relay at
    the path of its Unix socket."""

    def __init__(self):
        self.connections = {}

    @staticmethod
    def _connect(address):
        if isinstance(address, tuple):
            return http.client.HTTPConnection(*address, timeout=UPSTREAM_TIMEOUT_SECONDS)
        return _UnixHTTPConnection(address, RELAY_TIMEOUT_SECONDS)

    def request(self, address, method, path, body, headers):
        """(status, [(name, value)], body); retried once on a fresh connection when a kept one fails."""
        for attempt in (1, 2):
            connection = self.connections.get(address)
            if connection is None:
                connection = self.connections[address] = self._connect(address)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                del self.connections[address]
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "igw-sandbox-gke-gateway"
    timeout = 30  # idle keep-alive connections are closed after this

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        log.debug(format, *args)

    def _reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _fail(self, failure, pool=None):
        self.server.dataplane.stats.record(failure.status, pool=pool, failure=failure.reason)
        headers = [("Content-Type", "text/plain; charset=utf-8"), (api.FAILURE_HEADER, failure.reason)]
        if pool:
            headers.append((POOL_HEADER, pool))
        self._reply(failure.status, f"sandbox gateway: {failure.reason}: {failure.message}\n".encode(), headers)

    def _handle(self):
        dataplane = self.server.dataplane
        path, _separator, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path == api.STATS_PATH and self.command == "GET":
            self._reply(200, json.dumps(dataplane.describe()).encode(), [("Content-Type", "application/json")])
            return
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        host = headers.get("host", "").rsplit(":", 1)[0].lower()
        programme = dataplane.programme
        candidate = routing.select(programme.tables.get(self.server.server_address[:2], ()), host, self.command,
                                   path, {k: v[0] for k, v in parse_qs(query).items()}, headers)
        if candidate is None:
            self._fail(Failure(404, "NoMatchingRoute", f"no HTTPRoute rule matches {self.command} {path}"))
            return
        routing.apply_header_filters(candidate.rule.filters, headers)
        chosen = routing.choose_weighted(candidate.rule.backends, dataplane.rng)
        rule_id = f"HTTPRoute {'/'.join(candidate.rule.route)} rule {candidate.rule.index}"
        if chosen is None:
            self._fail(Failure(500, "NoBackends", f"{rule_id} has no backendRef with a weight above 0"))
            return
        routing.apply_header_filters(chosen.filters, headers)
        if isinstance(chosen.backend, Failure):
            self._fail(chosen.backend)
            return
        if isinstance(chosen.backend, PoolBackend):
            self._through_epp(chosen.backend, headers, body)
            return
        endpoint = chosen.backend.any_endpoint(dataplane.rng)
        if isinstance(endpoint, Failure):
            self._fail(endpoint)
            return
        self._finish(endpoint.address, endpoint.pod_id, None, headers, body)

    def _through_epp(self, backend, headers, body):
        """Ask the pool's EPP which pod serves the request (through the relay), or apply the pool's failureMode."""
        dataplane = self.server.dataplane
        pool_id = backend.pool_id
        if backend.epp_targets:
            target = backend.epp_targets[dataplane.rng.randrange(len(backend.epp_targets))]
            relayed = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP or k == "host"}
            relayed.update({POOL_HEADER: pool_id, RELAY_EPP_HEADER: target.address,
                            RELAY_EPP_POD_HEADER: target.pod_uid})
            try:
                status, response_headers, response_body = dataplane.connections.request(
                    dataplane.relay_socket, self.command, self.path, body, relayed)
            except (OSError, http.client.HTTPException) as error:
                status, response_headers, response_body = 502, [], f"EPP relay {dataplane.relay_socket}: {error}"
                response_headers = [(RELAY_OUTCOME_HEADER, EPP_FAILED)]
                response_body = response_body.encode()
            outcome = _header(response_headers, RELAY_OUTCOME_HEADER)
            problem = response_body.decode(errors="replace")
        else:
            outcome, problem = EPP_FAILED, backend.epp_problem
        if outcome == EPP_FAILED:
            if not backend.fails_open:
                self._fail(Failure(503, "EndpointPickerUnavailable",
                                   f"{problem} (failureMode {backend.spec.failure_mode})"), pool_id)
                return
            endpoint = backend.any_endpoint(dataplane.rng)
            if isinstance(endpoint, Failure):
                self._fail(endpoint, pool_id)
                return
            self._finish(endpoint.address, endpoint.pod_id, pool_id, headers, body)
            return
        if outcome == IMMEDIATE:
            # The EPP answered itself (an unknown model, a shed request): say so, as GKE's logs would.
            dataplane.stats.record(status, pool=pool_id, failure=EPP_RESPONSE)
            self._relay_reply(status, response_headers, response_body,
                              [(POOL_HEADER, pool_id), (api.FAILURE_HEADER, EPP_RESPONSE)])
            return
        named = _header(response_headers, RELAY_ENDPOINT_HEADER) or ""
        host, _separator, port = named.rpartition(":")
        endpoint = backend.endpoint_at((host, int(port))) if port.isdigit() else None
        pod_id = endpoint.pod_id if endpoint else named
        if outcome == UPSTREAM_FAILED:
            self._fail(Failure(503, "UpstreamUnavailable", f"pod {pod_id} at {named}: {problem}"), pool_id)
            return
        warning = _header(response_headers, RELAY_WARNING_HEADER)
        if warning:
            log.warning("%s: %s", pool_id, warning)
        dataplane.stats.record(status, pool=pool_id, pod=pod_id)
        self._relay_reply(status, response_headers, response_body, [(POD_HEADER, pod_id), (POOL_HEADER, pool_id)])

    def _finish(self, address, pod_id, pool_id, headers, body):
        """Forward to the pod at `address` without asking an EPP (a Service backend, or FailOpen)."""
        dataplane = self.server.dataplane
        upstream_headers = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
        if pool_id:
            upstream_headers[POOL_HEADER] = pool_id
        try:
            status, response_headers, response_body = dataplane.connections.request(
                address, self.command, self.path, body, upstream_headers)
        except (OSError, http.client.HTTPException) as error:
            self._fail(Failure(503, "UpstreamUnavailable", f"pod {pod_id} at {address[0]}:{address[1]}: {error}"),
                       pool_id)
            return
        dataplane.stats.record(status, pool=pool_id, pod=pod_id)
        self._relay_reply(status, response_headers, response_body,
                          [(POD_HEADER, pod_id)] + ([(POOL_HEADER, pool_id)] if pool_id else []))

    def _relay_reply(self, status, response_headers, body, own_headers):
        relayed = [(k, v) for k, v in response_headers if k.lower() not in _NOT_RELAYED]
        self._reply(status, body, relayed + own_headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def _header(headers, name):
    return next((v for k, v in headers if k.lower() == name), None)


class DataPlane:
    def __init__(self, fleet, listen_namespace=None, epps=None, relay_socket=None):
        """``listen_namespace``: the network namespace the listeners are made in (the host's), None for this one;
        ``relay_socket``: the Unix socket of the epp-relay that asks the EPPs (epp_relay.py)."""
        self.fleet = fleet
        self.listen_namespace = listen_namespace
        self.epps = epps
        self.relay_socket = relay_socket and str(relay_socket)
        self.stats = Stats()
        self.rng = random.Random()
        self.connections = _Connections()
        self.programme = None
        self.programmed_at = None
        self._servers = {}

    def activate(self, programme):
        """Serve `programme` from now on; returns {(address, port): error} for listeners that could not be bound."""
        self.programme, self.programmed_at = programme, time.time()
        return self.sync_listeners(programme.endpoints)

    def sync_listeners(self, endpoints):
        """Listen on exactly `endpoints` ((address, port) pairs); returns {endpoint: error} for those that failed."""
        for endpoint in [e for e in self._servers if e not in endpoints]:
            self._close(endpoint)
        errors = {}
        for endpoint in endpoints:
            if endpoint in self._servers:
                continue
            try:
                server = self._listen(endpoint)
            except OSError as error:
                errors[endpoint] = str(error)
                log.warning("cannot listen on %s:%d: %s", *endpoint, error)
                continue
            server.dataplane = self
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                             name="listener %s:%d" % endpoint, daemon=True).start()
            self._servers[endpoint] = server
            log.info("listening on %s:%d", *endpoint)
        return errors

    def _listen(self, endpoint):
        if self.listen_namespace is None:
            return SandboxHTTPServer(endpoint, _Handler)
        server = SandboxHTTPServer(endpoint, _Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = self.listen_namespace.server_socket(endpoint, SandboxHTTPServer.request_queue_size)
        return server

    def _close(self, endpoint):
        server = self._servers.pop(endpoint)
        server.shutdown()
        server.server_close()
        log.info("closed listener %s:%d", *endpoint)

    def describe(self):
        programme = self.programme
        return {
            "stats": self.stats.as_dict(),
            "programmed_at": self.programmed_at,
            "routes": {"/".join(key): programme.snapshot.get("httproutes", *key)["metadata"].get("generation")
                       for key in programme.attachments},
            "model_servers": self.fleet.describe(),
            "epps": self.epps.describe() if self.epps else {},
        }

    def close(self):
        for endpoint in list(self._servers):
            self._close(endpoint)


def is_loopback(address):
    return ipaddress.ip_address(address).is_loopback
