"""The network namespaces of a sandbox: where pod IPs, endpoint pickers and model servers live.

Nothing of a sandbox may listen beyond loopback on the host, yet the real endpoint picker binds
its ports on every interface and dials model servers at their pod IPs (kwok's 10.64.0.0/16). So
each sandbox makes network namespaces of its own (root is required):

- ``<prefix>-pods``: the pod network. Every model-server pod IP sits on its loopback interface,
  where that pod's simulator listens; the gateway process lives here (it dials pods and EPPs);
- ``<prefix>-<pod uid>``: one per running endpoint picker, as a pod has on a node, with the EPP
  pod's IP on a veth pair to the pod network, so that each EPP binds :9002 without a clash.

The host reaches in only through loopback: the Gateway listeners are sockets made in the host
namespace, and the API server is relayed into each namespace at the same loopback address and
port (Relay), so kubeconfigs work unchanged. A socket belongs to the namespace its creating
thread was in, which is how one process holds sockets of several namespaces (Namespace.run).
"""

import ctypes
import errno
import hashlib
import os
import socket
import subprocess
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
# Pod IPs sit on the pod network's loopback: kernels in containers often lack the dummy link type.
POD_INTERFACE = "lo"
RELAY_CHUNK = 65536

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    pass


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise NetnsError(f"setns failed: {os.strerror(code)} (the sandbox needs root to use network namespaces)")


def ip(*args, tolerate=()):
    """Run ``ip ARGS``; an error is raised with ip's own message unless it contains one of ``tolerate``."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0 and not any(text in result.stderr for text in tolerate):
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or f'exit {result.returncode}'}")
    return result.stdout


def prefix_of(state_dir):
    """A short, stable prefix for the namespaces of the sandbox whose state lives in ``state_dir``."""
    return "igw-" + hashlib.sha1(str(Path(state_dir).resolve()).encode()).hexdigest()[:8]


def pod_namespace_name(prefix, uid):
    """The namespace of the pod ``uid`` among those named ``prefix`` (see prefix_of)."""
    return f"{prefix}-{uid[:13]}"


class Namespace:
    """A network namespace, by name (``ip netns``) or by an open file descriptor (the host's)."""

    def __init__(self, name=None, fd=None):
        self.name = name
        self._fd = fd

    @classmethod
    def current(cls):
        """The namespace the calling thread is in now, held open so that it can be entered later."""
        return cls(fd=os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC))

    @property
    def path(self):
        return NETNS_DIR / self.name

    def exists(self):
        return self.name is not None and self.path.exists()

    def create(self):
        ip("netns", "add", self.name)
        ip("-n", self.name, "link", "set", "lo", "up")

    def delete(self):
        ip("netns", "delete", self.name, tolerate=("No such file",))

    def enter(self):
        """Move the calling thread (and every thread it starts afterwards) into this namespace."""
        if self._fd is not None:
            _setns(self._fd)
            return
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(fd)
        finally:
            os.close(fd)

    def run(self, function):
        """``function()`` on a short-lived thread inside this namespace; sockets it makes stay in it."""
        outcome = {}

        def target():
            try:
                self.enter()
                outcome["value"] = function()
            except BaseException as error:  # noqa: BLE001 - handed back to the caller's thread
                outcome["error"] = error

        thread = threading.Thread(target=target, name=f"netns {self.name or 'host'}", daemon=True)
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def server_socket(self, address, backlog=128):
        return self.run(lambda: socket.create_server(address, backlog=backlog, reuse_port=False))

    def connect(self, address, timeout=10):
        sock = self.run(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        sock.settimeout(None)
        return sock


def delete_all(prefix):
    """Delete every namespace whose name starts with ``prefix`` (what a crashed sandbox left)."""
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(prefix + "-"):
            Namespace(name).delete()


class PodNetwork:
    """The pod network namespace of one sandbox and the EPP namespaces attached to it."""

    def __init__(self, state_dir):
        self.prefix = prefix_of(state_dir)
        self.pods = Namespace(f"{self.prefix}-pods")

    def create(self):
        """A fresh pod network; namespaces an earlier run of this sandbox left are deleted first."""
        self.delete()
        try:
            self.pods.create()
        except NetnsError as error:
            raise NetnsError(f"cannot create the sandbox's pod network namespace {self.pods.name}: {error}. "
                             "The sandbox runs endpoint pickers and model servers in network namespaces of its "
                             "own and needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) for them.") from None

    def delete(self):
        delete_all(self.prefix)

    def add_pod_address(self, address):
        ip("-n", self.pods.name, "addr", "add", f"{address}/32", "dev", POD_INTERFACE, tolerate=("File exists",))

    def remove_pod_address(self, address):
        ip("-n", self.pods.name, "addr", "del", f"{address}/32", "dev", POD_INTERFACE,
           tolerate=("Cannot assign", "not found"))

    def pod_namespace(self, uid, address):
        """A namespace of its own for the pod ``uid`` with ``address``, linked to the pod network by a veth pair."""
        pod = Namespace(pod_namespace_name(self.prefix, uid))
        link = "v" + uid.replace("-", "")[:12]
        pod.delete()
        pod.create()
        ip("-n", self.pods.name, "link", "del", link, tolerate=("Cannot find",))
        ip("-n", self.pods.name, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", pod.name)
        ip("-n", self.pods.name, "link", "set", link, "up")
        ip("-n", self.pods.name, "route", "replace", f"{address}/32", "dev", link)
        ip("-n", pod.name, "addr", "add", f"{address}/32", "dev", "eth0")
        ip("-n", pod.name, "link", "set", "eth0", "up")
        ip("-n", pod.name, "route", "add", "default", "dev", "eth0")
        return pod


class Relay:
    """Accepts TCP connections at ``address`` inside ``inside`` and joins each to ``address`` in ``outside``.

    Used for the API server: inside a namespace, 127.0.0.1:<port> reaches the host's API server.
    """

    def __init__(self, inside, outside, address):
        self.address = address
        self._outside = outside
        self._listener = inside.server_socket(address)
        self._closed = False
        threading.Thread(target=self._accept, name=f"relay {address[0]}:{address[1]}", daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                client, _peer = self._listener.accept()
            except OSError:
                return
            try:
                upstream = self._outside.connect(self.address)
            except OSError:
                client.close()
                continue
            join(client, upstream)

    def close(self):
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError as error:
            if error.errno != errno.ENOTCONN:
                raise
        self._listener.close()


def join(one, other):
    """Carry bytes both ways between two connected sockets until both directions end, then close both."""
    _Pair(one, other).start()


class _Pair:
    """Two joined connections; each direction is pumped by a thread, and the last one out closes both."""

    def __init__(self, one, other):
        self._sockets = (one, other)
        self._running = 2
        self._lock = threading.Lock()

    def start(self):
        one, other = self._sockets
        for source, sink in ((one, other), (other, one)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(RELAY_CHUNK)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            for sock in self._sockets:
                sock.close()
