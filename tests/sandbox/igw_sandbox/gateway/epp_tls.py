"""TLS to an endpoint picker, as GKE's load balancer speaks it.

Every EPP release serves its ext_proc gRPC port over TLS by default (secure serving) with a
certificate it makes itself at start: self-signed, without a host name, so nothing can verify it,
and GKE's load balancer does not try. grpcio cannot skip verification, so the gateway gives it a
plaintext Unix socket per EPP and this bridge carries each connection on over TLS (ALPN h2,
certificate not verified) to the EPP's address in the pod network.
"""

import logging
import os
import socket
import ssl
import threading
from pathlib import Path

from ..netns import join

log = logging.getLogger("igw_sandbox.gateway.epp_tls")
CONNECT_TIMEOUT_SECONDS = 5


def _client_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    return context


class TlsBridge:
    """A Unix socket at ``path`` whose connections reach ``address`` (ip, port) over TLS."""

    def __init__(self, address, path):
        self.address = address
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self._context = _client_context()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(64)
        self._closed = False
        threading.Thread(target=self._accept, name=f"tls bridge {address[0]}:{address[1]}", daemon=True).start()

    @property
    def target(self):
        """The grpcio target of this bridge."""
        return f"unix:{self.path}"

    def _accept(self):
        while not self._closed:
            try:
                client, _peer = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._join, args=(client,), daemon=True).start()

    def _join(self, client):
        try:
            raw = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT_SECONDS)
            upstream = self._context.wrap_socket(raw)
            upstream.settimeout(None)
        except OSError as error:
            # grpcio sees the connection close and reports the EPP unavailable; the log says why.
            log.info("EPP %s:%d unreachable over TLS: %s", *self.address, error)
            client.close()
            return
        join(client, upstream)

    def close(self):
        self._closed = True
        try:
            self._listener.close()
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
