"""etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1.

Every listening socket is pinned to 127.0.0.1 with an explicit flag, including
secondary ones (peer URLs, health and metrics servers), because several of these
programs default to all interfaces.
"""

import json
import socket
import ssl
import urllib.request

from . import pki, processes, upstream
from .waits import wait_until

LOOPBACK = "127.0.0.1"
PORT_NAMES = ("etcd-client", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# Start order; `down` stops them in reverse. The controllers need only the apiserver.
STORAGE_AND_API = ("etcd", "kube-apiserver")
CONTROLLERS = ("kube-controller-manager", "kube-scheduler", "kwok")
COMPONENTS = STORAGE_AND_API + CONTROLLERS
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
# Pod IPs kwok hands out: bookkeeping for EndpointSlices only, never dialled.
POD_CIDR = "10.64.0.0/16"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node=fake"
NODE_LEASE_SECONDS = 40
# How long the node lifecycle controller waits for a node's lease before it marks the node (and every
# pod on it) NotReady; kube-controller-manager's default is 50 s. The sandbox's controller manager
# stays up while restart-apiserver stops the API server, and sees no lease renewal for the outage plus
# the back-off of its lease watch, which the restarted API server refuses (RBAC not yet synced) for a
# moment: about 60 s after a 20 s outage, which with the default would take every pod out of service.
NODE_MONITOR_GRACE_SECONDS = 120

ETCD_TIMEOUT = 60
APISERVER_TIMEOUT = 180
COMPONENT_TIMEOUT = 90

ADMIN_USER = "admin"
RESTRICTED_USER = "restricted-user"
# (kubeconfig basename, certificate CN, groups). The controller manager and the
# scheduler use their bootstrap RBAC identities as on a real cluster; kwok plays
# every kubelet at once, so it gets full rights.
IDENTITIES = [
    ("admin", ADMIN_USER, ["system:masters"]),
    ("restricted", RESTRICTED_USER, []),
    ("kube-controller-manager", "system:kube-controller-manager", []),
    ("kube-scheduler", "system:kube-scheduler", []),
    ("kwok", "kwok-controller", ["system:masters"]),
]


def free_ports(names=PORT_NAMES):
    """One free port on 127.0.0.1 per name, held open until all are chosen."""
    sockets = []
    try:
        for name in names:
            listener = socket.socket()
            listener.bind((LOOPBACK, 0))
            sockets.append((name, listener))
        return {name: listener.getsockname()[1] for name, listener in sockets}
    finally:
        for _name, listener in sockets:
            listener.close()


def apiserver_url(ports):
    return f"https://{LOOPBACK}:{ports['kube-apiserver']}"


def write_credentials(layout, ports):
    """CA, serving and client certificates, SA keys, and one kubeconfig per identity."""
    """Return the CA, which other components of the sandbox issue their certificates from."""
    ca = pki.CertificateAuthority(layout.pki)
    ca.issue("kube-apiserver", "kube-apiserver", server=True)
    pki.write_service_account_keys(layout.pki)
    layout.kubeconfigs.mkdir(parents=True, exist_ok=True)
    cluster = f"igw-sandbox-{layout.name}"
    for basename, user, groups in IDENTITIES:
        cert, key = ca.issue(f"client-{basename}", user, groups)
        pki.write_kubeconfig(layout.kubeconfigs / f"{basename}.kubeconfig", apiserver_url(ports), ca.cert_pem,
                             cert, key, user, cluster)
    layout.admin_kubeconfig.write_bytes((layout.kubeconfigs / "admin.kubeconfig").read_bytes())
    layout.restricted_kubeconfig.write_bytes((layout.kubeconfigs / "restricted.kubeconfig").read_bytes())
    for path in (layout.admin_kubeconfig, layout.restricted_kubeconfig):
        path.chmod(0o600)
    return ca


def _argv(component, layout, ports, binaries):
    pki_dir, kubeconfigs = layout.pki, layout.kubeconfigs
    etcd_client = f"http://{LOOPBACK}:{ports['etcd-client']}"
    etcd_peer = f"http://{LOOPBACK}:{ports['etcd-peer']}"
    if component == "etcd":
        return [binaries["etcd"], "--name=sandbox", f"--data-dir={layout.etcd_data}",
                f"--listen-client-urls={etcd_client}", f"--advertise-client-urls={etcd_client}",
                f"--listen-peer-urls={etcd_peer}", f"--initial-advertise-peer-urls={etcd_peer}",
                f"--initial-cluster=sandbox={etcd_peer}", "--unsafe-no-fsync", "--log-level=warn"]
    if component == "kube-apiserver":
        return [binaries["kube-apiserver"], f"--etcd-servers={etcd_client}",
                f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}",
                f"--secure-port={ports['kube-apiserver']}",
                f"--tls-cert-file={pki_dir / 'kube-apiserver.crt'}",
                f"--tls-private-key-file={pki_dir / 'kube-apiserver.key'}",
                f"--client-ca-file={pki_dir / 'ca.crt'}",
                "--authorization-mode=Node,RBAC",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki_dir / 'sa.pub'}",
                f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
                "--allow-privileged=true", "--profiling=false"]
    if component == "kube-controller-manager":
        return [binaries["kube-controller-manager"],
                f"--kubeconfig={kubeconfigs / 'kube-controller-manager.kubeconfig'}",
                f"--bind-address={LOOPBACK}", f"--secure-port={ports['kube-controller-manager']}",
                f"--cert-dir={pki_dir / 'kube-controller-manager'}",
                "--leader-elect=false", "--controllers=*", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki_dir / 'sa.key'}",
                f"--root-ca-file={pki_dir / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki_dir / 'ca.crt'}",
                f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
                f"--cluster-name=igw-sandbox-{layout.name}", "--profiling=false",
                f"--node-monitor-grace-period={NODE_MONITOR_GRACE_SECONDS}s"]
    if component == "kube-scheduler":
        return [binaries["kube-scheduler"], f"--kubeconfig={kubeconfigs / 'kube-scheduler.kubeconfig'}",
                f"--bind-address={LOOPBACK}", f"--secure-port={ports['kube-scheduler']}",
                f"--cert-dir={pki_dir / 'kube-scheduler'}", "--leader-elect=false", "--profiling=false"]
    if component == "kwok":
        stages = [f"--config={stage}" for stage in upstream.kwok_stages()]
        return [binaries["kwok"], f"--kubeconfig={kubeconfigs / 'kwok.kubeconfig'}",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}",
                f"--node-ip={LOOPBACK}", f"--cidr={POD_CIDR}",
                # Without it the heartbeat-with-lease stage keeps no node Lease, the node
                # lifecycle controller marks the nodes NotReady and every pod with them, and
                # kwok never sets a pod Ready again (kwokctl always passes it).
                f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
                f"--server-address={LOOPBACK}:{ports['kwok']}", *stages]
    raise ValueError(component)


def _get(url, context=None):
    with urllib.request.urlopen(url, timeout=3, context=context) as response:
        return response.status, response.read().decode(errors="replace")


def _health_check(component, layout, ports):
    if component == "etcd":
        url = f"http://{LOOPBACK}:{ports['etcd-client']}/health"
        return lambda: json.loads(_get(url)[1]).get("health") == "true"
    if component == "kube-apiserver":
        context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
        context.load_cert_chain(layout.pki / "client-admin.crt", layout.pki / "client-admin.key")
        url = f"{apiserver_url(ports)}/readyz"
        return lambda: _get(url, context)[0] == 200
    if component == "kwok":
        url = f"http://{LOOPBACK}:{ports['kwok']}/healthz"
        return lambda: _get(url)[0] == 200
    # kcm and the scheduler serve a self-signed certificate they make at start;
    # a health probe has nothing to verify it against.
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    url = f"https://{LOOPBACK}:{ports[component]}/healthz"
    return lambda: _get(url, insecure)[0] == 200


def launch(layout, ports, binaries, progress, components):
    """Start `components` in the background without waiting for them."""
    if "etcd" in components:
        layout.etcd_data.mkdir(parents=True, exist_ok=True)
        layout.etcd_data.chmod(0o700)
    for component in components:
        progress.say(f"starting {component} (log: {layout.log(component)})")
        processes.start(component, _argv(component, layout, ports, binaries), layout.root)


def wait_healthy(layout, ports, progress, components):
    timeouts = {"etcd": ETCD_TIMEOUT, "kube-apiserver": APISERVER_TIMEOUT}
    for component in components:
        progress.say(f"waiting for {component} to report healthy")
        wait_until(f"{component} to report healthy", _health_check(component, layout, ports),
                   timeouts.get(component, COMPONENT_TIMEOUT), log=layout.log(component),
                   alive=processes.exit_reporter(layout.root, component))


def healthy(layout, ports):
    """True when every component's process is alive and its health endpoint answers."""
    for component in COMPONENTS:
        if not processes.recorded_pid(layout.root, component):
            return False
        try:
            if not _health_check(component, layout, ports)():
                return False
        except Exception:  # not answering counts as unhealthy; the reason does not matter here
            return False
    return True
