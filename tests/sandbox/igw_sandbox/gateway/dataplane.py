"""The simulated load balancer: one HTTP listener per Gateway port on the sandbox address.

Each request is matched against the active Programme's route table for its port,
sent to a backend chosen by weight, resolved by the backend (pool and EPP rules)
to a model-server pod, and forwarded to that pod's simulator on 127.0.0.1. Pod
and node IPs are never dialled.
"""

import http.client
import ipaddress
import json
import logging
import random
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from ..modelserver import POD_HEADER, POOL_HEADER, SandboxHTTPServer
from . import api, routing
from .backends import Failure

log = logging.getLogger("igw_sandbox.gateway.dataplane")

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length", "host"}
# The gateway writes these itself.
_NOT_RELAYED = _HOP_BY_HOP | {"server", "date", POOL_HEADER, POD_HEADER}
UPSTREAM_TIMEOUT_SECONDS = 60


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

    def request(self, port, method, path, body, headers):
        for attempt in (1, 2):
            connection = self.connections.get(port)
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=UPSTREAM_TIMEOUT_SECONDS)
                self.connections[port] = connection
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                del self.connections[port]
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
        pick = chosen.backend.pick(body, headers, dataplane.rng)
        if isinstance(pick, Failure):
            self._fail(pick, chosen.backend.pool_id)
            return
        self._forward(pick, chosen.backend.pool_id, headers)

    def _forward(self, pick, pool_id, headers):
        dataplane = self.server.dataplane
        port = dataplane.fleet.port_of(pick.endpoint.uid)
        upstream_headers = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
        if pool_id:
            upstream_headers[POOL_HEADER] = pool_id
        try:
            if port is None:
                raise ConnectionRefusedError(f"no model server runs for pod {pick.endpoint.pod_id}")
            status, response_headers, response_body = dataplane.upstreams.request(
                port, self.command, self.path, pick.body, upstream_headers)
        except (OSError, http.client.HTTPException) as error:
            self._fail(Failure(503, "UpstreamUnavailable", f"pod {pick.endpoint.pod_id}: {error}"), pool_id)
            return
        dataplane.stats.record(status, pool=pool_id, pod=pick.endpoint.pod_id)
        relayed = [(k, v) for k, v in response_headers if k.lower() not in _NOT_RELAYED]
        relayed.append((POD_HEADER, pick.endpoint.pod_id))
        if pool_id:
            relayed.append((POOL_HEADER, pool_id))
        self._reply(status, response_body, relayed)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class DataPlane:
    def __init__(self, address, fleet):
        self.address = address
        self.fleet = fleet
        self.stats = Stats()
        self.rng = random.Random()
        self.upstreams = _Upstreams()
        self.programme = None
        self.programmed_at = None
        self._servers = {}

    def activate(self, programme):
        """Serve `programme` from now on; returns {port: error} for ports that could not be bound."""
        # New pods' servers first and old ones last, so no request is routed to a stopped server.
        self.fleet.start_missing(programme.model_servers)
        self.programme, self.programmed_at = programme, time.time()
        errors = self.sync_ports(programme.port_owners)
        self.fleet.stop_unwanted(programme.model_servers)
        return errors

    def sync_ports(self, ports):
        for port in [p for p in self._servers if p not in ports]:
            self._close(port)
        errors = {}
        for port in ports:
            if port in self._servers:
                continue
            try:
                server = SandboxHTTPServer((self.address, port), _Handler)
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
        }

    def close(self):
        for port in list(self._servers):
            self._close(port)


def is_loopback(address):
    return ipaddress.ip_address(address).is_loopback
