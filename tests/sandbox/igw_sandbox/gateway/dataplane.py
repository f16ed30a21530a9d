"""The simulated load balancer: one HTTP listener per Gateway port on the sandbox address.

Each request is matched against the active Programme's route table for its port and sent to a
backend chosen by weight. For an InferencePool the pool's endpoint picker decides, over Envoy's
ext_proc protocol as GKE's load balancer asks it through its service extension: the request's
headers and body go to the EPP, which names the pod (x-gateway-destination-endpoint) and may
change headers and body or answer itself; the model server's response goes back through the
EPP. When the EPP cannot be reached or fails, the pool's failureMode decides: FailClose answers
503, FailOpen forwards to a ready pod. The listeners are loopback sockets of the host; pods and
EPPs are dialled at their addresses inside the sandbox's pod network (netns.py).
"""

import http.client
import ipaddress
import json
import logging
import random
import threading
import time
import uuid
from pathlib import Path
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from ..modelserver import POD_HEADER, POOL_HEADER, SandboxHTTPServer
from . import api, routing
from .backends import Failure, PoolBackend
from .epp_tls import TlsBridge
from .extproc import ExtProcClient, ExtProcError

log = logging.getLogger("igw_sandbox.gateway.dataplane")

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length", "host"}
# The gateway writes these itself.
_NOT_RELAYED = _HOP_BY_HOP | {"server", "date", POOL_HEADER, POD_HEADER}
UPSTREAM_TIMEOUT_SECONDS = 60
EXT_PROC_TIMEOUT_SECONDS = 10
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


class _Upstreams(threading.local):
    """Per-thread keep-alive connections to the model-server simulators."""

    def __init__(self):
        self.connections = {}

    def request(self, address, method, path, body, headers):
        for attempt in (1, 2):
            connection = self.connections.get(address)
            if connection is None:
                connection = http.client.HTTPConnection(*address, timeout=UPSTREAM_TIMEOUT_SECONDS)
                self.connections[address] = connection
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
        candidate = routing.select(programme.tables.get(self.server.server_address[1], ()), host, self.command,
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
            self._through_epp(chosen.backend, path, headers, body)
            return
        endpoint = chosen.backend.any_endpoint(dataplane.rng)
        if isinstance(endpoint, Failure):
            self._fail(endpoint)
            return
        self._finish(endpoint.address, endpoint.pod_id, None, headers, body)

    def _through_epp(self, backend, path, headers, body):
        """Ask the pool's EPP which pod serves the request, as GKE's load balancer does over ext_proc."""
        dataplane = self.server.dataplane
        pool_id = backend.pool_id
        try:
            if not backend.epp_targets:
                raise ExtProcError(backend.epp_problem)
            target = backend.epp_targets[dataplane.rng.randrange(len(backend.epp_targets))]
            session = dataplane.ext_proc(target).session()
            try:
                decision = session.request(self._request_headers(path, headers), body)
            except ExtProcError:
                session.close()
                raise
        except ExtProcError as error:
            if not backend.fails_open:
                self._fail(Failure(503, "EndpointPickerUnavailable",
                                   f"{error} (failureMode {backend.spec.failure_mode})"), pool_id)
                return
            endpoint = backend.any_endpoint(dataplane.rng)
            if isinstance(endpoint, Failure):
                self._fail(endpoint, pool_id)
                return
            self._finish(endpoint.address, endpoint.pod_id, pool_id, headers, body)
            return
        if decision.immediate is not None or not decision.endpoint:
            session.close()
        if decision.immediate is not None:
            immediate = decision.immediate
            dataplane.stats.record(immediate.status, pool=pool_id, failure=EPP_RESPONSE)
            headers = [(k, v) for k, v in immediate.headers.set_headers if k.lower() not in _NOT_RELAYED]
            # The EPP answered itself (an unknown model, a shed request): say so, as GKE's logs would.
            self._reply(immediate.status, immediate.body,
                        [*headers, (POOL_HEADER, pool_id), (api.FAILURE_HEADER, EPP_RESPONSE)])
            return
        if not decision.endpoint:
            self._fail(Failure(503, "EndpointPickerUnavailable", f"EPP {target} named no endpoint"), pool_id)
            return
        host, _separator, port = decision.endpoint.rpartition(":")
        address = (host, int(port))
        endpoint = backend.endpoint_at(address)
        _mutate(headers, decision.set_headers, decision.remove_headers)
        self._finish(address, endpoint.pod_id if endpoint else decision.endpoint, pool_id, headers,
                     body if decision.body is None else decision.body, session)

    def _request_headers(self, path, headers):
        """The request headers as Envoy hands them to ext_proc: pseudo-headers first, names in lower case."""
        # Envoy's connection manager gives every request an id; the EPPs log it.
        headers.setdefault("x-request-id", str(uuid.uuid4()))
        pseudo = [(":method", self.command), (":path", self.path), (":scheme", "http"),
                  (":authority", headers.get("host", ""))]
        return pseudo + [(name, value) for name, value in headers.items() if name != "host"]

    def _finish(self, address, pod_id, pool_id, headers, body, session=None):
        dataplane = self.server.dataplane
        upstream_headers = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
        if pool_id:
            upstream_headers[POOL_HEADER] = pool_id
        try:
            status, response_headers, response_body = dataplane.upstreams.request(
                address, self.command, self.path, body, upstream_headers)
        except (OSError, http.client.HTTPException) as error:
            self._fail(Failure(503, "UpstreamUnavailable", f"pod {pod_id} at {address[0]}:{address[1]}: {error}"),
                       pool_id)
            return
        if session is not None:
            try:
                answer = session.response(status, [(k.lower(), v) for k, v in response_headers], response_body)
                response_body = answer.body
                kept = dict((k.lower(), v) for k, v in response_headers)
                _mutate(kept, answer.set_headers, answer.remove_headers)
                response_headers = list(kept.items())
            except ExtProcError as error:
                log.warning("response phase of %s: %s", pool_id, error)
            finally:
                session.close()
        dataplane.stats.record(status, pool=pool_id, pod=pod_id)
        relayed = [(k, v) for k, v in response_headers if k.lower() not in _NOT_RELAYED]
        relayed.append((POD_HEADER, pod_id))
        if pool_id:
            relayed.append((POOL_HEADER, pool_id))
        self._reply(status, response_body, relayed)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def _mutate(headers, set_headers, remove_headers):
    """Apply an EPP's header mutation to {lower-case name: value}; pseudo-headers and Host stay the gateway's."""
    for name in remove_headers:
        headers.pop(name.lower(), None)
    for name, value in set_headers:
        if not name.startswith(":") and name.lower() != "host":
            headers[name.lower()] = value


class DataPlane:
    def __init__(self, address, fleet, listen_namespace=None, epps=None, tls_dir=None):
        """``listen_namespace``: the network namespace the listeners are made in (the host's), None for this one;
        ``tls_dir``: where the TLS bridges to the EPPs keep their sockets; None speaks plaintext to EPPs (the
        unit tests' fake EPP)."""
        self.tls_dir = tls_dir
        self._bridges = []
        self.address = address
        self.fleet = fleet
        self.listen_namespace = listen_namespace
        self.epps = epps
        self._ext_proc = {}
        self._ext_proc_lock = threading.Lock()
        self.stats = Stats()
        self.rng = random.Random()
        self.upstreams = _Upstreams()
        self.programme = None
        self.programmed_at = None
        self._servers = {}

    def activate(self, programme):
        """Serve `programme` from now on; returns {port: error} for ports that could not be bound."""
        self.programme, self.programmed_at = programme, time.time()
        return self.sync_ports(programme.port_owners)

    def ext_proc(self, target):
        """The ext_proc client of the EPP at ``target`` ("ip:port"), one channel per EPP."""
        with self._ext_proc_lock:
            client = self._ext_proc.get(target)
            if client is None:
                via = None
                if self.tls_dir is not None:
                    host, _separator, port = target.rpartition(":")
                    bridge = TlsBridge((host, int(port)), Path(self.tls_dir) / f"{host}_{port}.sock")
                    self._bridges.append(bridge)
                    via = bridge.target
                client = self._ext_proc[target] = ExtProcClient(target, EXT_PROC_TIMEOUT_SECONDS, via)
            return client

    def sync_ports(self, ports):
        for port in [p for p in self._servers if p not in ports]:
            self._close(port)
        errors = {}
        for port in ports:
            if port in self._servers:
                continue
            try:
                server = self._listen(port)
            except OSError as error:
                errors[port] = str(error)
                log.warning("cannot listen on %s:%d: %s", self.address, port, error)
                continue
            server.dataplane = self
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                             name=f"listener {port}", daemon=True).start()
            self._servers[port] = server
            log.info("listening on %s:%d", self.address, port)
        return errors

    def _listen(self, port):
        if self.listen_namespace is None:
            return SandboxHTTPServer((self.address, port), _Handler)
        server = SandboxHTTPServer((self.address, port), _Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = self.listen_namespace.server_socket((self.address, port), SandboxHTTPServer.request_queue_size)
        return server

    def _close(self, port):
        server = self._servers.pop(port)
        server.shutdown()
        server.server_close()
        log.info("closed listener %s:%d", self.address, port)

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
        for port in list(self._servers):
            self._close(port)
        for client in self._ext_proc.values():
            client.close()
        for bridge in self._bridges:
            bridge.close()


def is_loopback(address):
    return ipaddress.ip_address(address).is_loopback
