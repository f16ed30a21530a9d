"""The real endpoint pickers: one process per ready EPP pod, run as the pod would run on a node.

For every ready pod with an EPP container (image ``.../epp:<release>``) the runner starts the EPP
binary of that release with the container's own args and env, in a network namespace of its own
that holds the pod's IP, authenticated as the pod's ServiceAccount with a token from the
TokenRequest API (so it has exactly the RBAC the chart or our manifests granted), with the files
of its ConfigMap and Secret volumes written out. A container path in the args that lies under a
volume's mountPath is rewritten to where that volume was written: the one way in which the
command line differs from the pod's. An EPP that exits is started again after a back-off, as the
kubelet does; its log is ``logs/epp-<namespace>-<pod>.log`` in the sandbox's state directory.
"""

import base64
import logging
import os
import posixpath
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import netns, processes
from ..netns import Relay
from . import api

log = logging.getLogger("igw_sandbox.gateway.epps")

EPP_IMAGE = re.compile(r"/epp:(v\d+\.\d+\.\d+)(@.*)?$")
RESTART_BACKOFF_SECONDS = 5
TOKEN_SECONDS = 24 * 3600
STOP_GRACE_SECONDS = 5
FIELD_REFS = {
    "metadata.name": lambda pod: pod["metadata"]["name"],
    "metadata.namespace": lambda pod: pod["metadata"]["namespace"],
    "metadata.uid": lambda pod: pod["metadata"]["uid"],
    "status.podIP": lambda pod: pod["status"].get("podIP", ""),
    "spec.serviceAccountName": lambda pod: pod["spec"].get("serviceAccountName", "default"),
    "spec.nodeName": lambda pod: pod["spec"].get("nodeName", ""),
}


class EppStartError(RuntimeError):
    pass


def epp_container(pod):
    """(container, release) of the pod's endpoint-picker container, or (None, None)."""
    for container in pod["spec"].get("containers", []):
        match = EPP_IMAGE.search(container.get("image", ""))
        if match:
            return container, match.group(1)
    return None, None


def ext_proc_port(container):
    """The port the EPP container serves ext_proc on: its port named grpc, as every chart release names it."""
    for port in container.get("ports", []):
        if port.get("name") == "grpc":
            return port["containerPort"]
    return api.DEFAULT_EPP_PORT


def not_listening(pods, sockets, prefix):
    """Names of the ready EPP pods among ``pods`` whose EPP has no listening socket on its ext_proc port in
    the pod's own network namespace (``sockets``: processes.TcpSocket of the sandbox's processes)."""
    listening = {(s.namespace, s.port) for s in sockets if s.listening}
    return sorted(pod["metadata"]["name"] for uid, pod in wanted_epps(pods).items()
                  if (netns.pod_namespace_name(prefix, uid), ext_proc_port(epp_container(pod)[0])) not in listening)


def _pod_ready(pod):
    status = pod.get("status", {})
    return (status.get("phase") == "Running" and status.get("podIP")
            and not pod["metadata"].get("deletionTimestamp")
            and any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])))


def wanted_epps(pods):
    """{pod uid: pod} of the ready pods that run an endpoint picker."""
    return {pod["metadata"]["uid"]: pod for pod in pods or [] if _pod_ready(pod) and epp_container(pod)[0]}


# The EPP images' WORKDIR: a relative path in the args (v0.5's chart passes config/<file>) is read from there.
IMAGE_WORKING_DIR = "/"


def _moved(arg, ordered_mounts):
    for mount_path, local in ordered_mounts:
        root = mount_path.rstrip("/")
        match = re.search(r"(^|=)(" + re.escape(root) + r")(/|$)", arg)
        if match:
            return arg[:match.start(2)] + str(local) + arg[match.end(2):]
    return None


def rewrite_paths(args, mounts, working_dir=IMAGE_WORKING_DIR):
    """``args`` with every path under a mountPath moved to where that volume was written (longest mount first);
    a relative path counts from the container's ``working_dir``."""
    ordered = sorted(mounts.items(), key=lambda item: -len(item[0]))
    rewritten = []
    for arg in args:
        moved = _moved(arg, ordered)
        if moved is None and not arg.startswith(("-", "/")) and "/" in arg:
            moved = _moved(posixpath.normpath(posixpath.join(working_dir, arg)), ordered)
        rewritten.append(arg if moved is None else moved)
    return rewritten


# The saturation detector of the v0.5 and v1.x endpoint pickers counts a pod whose metrics are older than
# SD_METRICS_STALENESS_THRESHOLD (default 200 ms) as saturated, and drops Sheddable and Standard requests. On a
# cluster each picker scrapes every 50 ms on a CPU of its own; here a dozen pickers, model servers and load
# generators share two cores, a scrape can lag 200 ms, and requests would be shed for a saturation no pod has.
# The sandbox gives scrapes that slack, as the container's own env may too (its value wins).
SANDBOX_EPP_ENV = {"SD_METRICS_STALENESS_THRESHOLD": "2s"}


def container_env(container, pod):
    """The container's environment as the kubelet would set it (literal values and field references)."""
    env = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
            continue
        field_ref = (entry.get("valueFrom") or {}).get("fieldRef")
        if field_ref and field_ref.get("fieldPath") in FIELD_REFS:
            env[entry["name"]] = FIELD_REFS[field_ref["fieldPath"]](pod)
    return env


@dataclass
class RunningEpp:
    pod_id: str
    uid: str
    release: str
    namespace: object = None
    relay: object = None
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    exit_code: int | None = None
    error: str | None = None
    log_path: Path | None = None
    launch: dict = field(default_factory=dict)


class EppRunner:
    """Keeps one EPP process per ready EPP pod, in step with the pods the API server lists."""

    def __init__(self, kube, pod_network, host, state_dir, api_address, ca_data, binary_for):
        """``binary_for(release)`` is the path of that release's EPP binary (raises for an unknown release)."""
        self.kube = kube
        self.pod_network = pod_network
        self.host = host
        self.state_dir = Path(state_dir)
        self.api_address = api_address
        self.ca_data = ca_data
        self.binary_for = binary_for
        self._epps = {}
        self._lock = threading.Lock()

    def sync(self, pods):
        """Start EPPs for new ready pods, stop those of pods gone, restart exited ones after the back-off."""
        wanted = wanted_epps(pods)
        with self._lock:
            for uid in [uid for uid in self._epps if uid not in wanted]:
                self._stop(self._epps.pop(uid))
            for uid, pod in wanted.items():
                epp = self._epps.get(uid)
                if epp is None:
                    container, release = epp_container(pod)
                    epp = RunningEpp(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}", uid, release)
                    self._epps[uid] = epp
                    self._start(epp, pod, container)
                elif epp.process is not None and epp.process.poll() is not None and epp.exit_code is None:
                    epp.exit_code = epp.process.returncode
                    log.warning("EPP of pod %s (%s) exited with code %s; last lines of %s:\n%s", epp.pod_id,
                                epp.release, epp.exit_code, epp.log_path, _tail(epp.log_path))
                elif epp.exit_code is not None and time.monotonic() - epp.started_at >= RESTART_BACKOFF_SECONDS:
                    epp.restarts += 1
                    self._spawn(epp)

    def _start(self, epp, pod, container):
        try:
            binary = self.binary_for(epp.release)
        except (KeyError, ValueError, RuntimeError) as error:
            epp.error = f"no EPP binary for release {epp.release}: {error}"
            log.error("EPP of pod %s not started: %s", epp.pod_id, epp.error)
            return
        try:
            workdir = self._pod_dir(pod)
            mounts = self._write_volumes(pod, container, workdir)
            kubeconfig = self._write_kubeconfig(pod, workdir)
            epp.namespace = self.pod_network.pod_namespace(epp.uid, pod["status"]["podIP"])
            epp.relay = Relay(epp.namespace, self.host, self.api_address)
        except Exception as error:  # noqa: BLE001 - reported on the EPP, the gateway keeps serving
            epp.error = f"cannot prepare the EPP of pod {epp.pod_id}: {error}"
            log.error("%s", epp.error)
            return
        args = rewrite_paths([*container.get("command", [])[1:], *container.get("args", [])], mounts,
                             container.get("workingDir") or IMAGE_WORKING_DIR)
        env = dict(SANDBOX_EPP_ENV, **container_env(container, pod), KUBECONFIG=str(kubeconfig), HOME=str(workdir))
        epp.launch = {"argv": ["ip", "netns", "exec", epp.namespace.name, str(binary), *args], "env": env,
                      "cwd": workdir}
        epp.log_path = self.state_dir / "logs" / f"epp-{pod['metadata']['namespace']}-{pod['metadata']['name']}.log"
        self._spawn(epp)

    def _spawn(self, epp):
        epp.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, **epp.launch["env"])
        env[processes.MARKER] = str(self.state_dir)
        with open(epp.log_path, "ab") as log_file:
            log_file.write(f"--- {time.strftime('%H:%M:%S')} start {' '.join(epp.launch['argv'])}\n".encode())
            log_file.flush()
            epp.process = subprocess.Popen(epp.launch["argv"], cwd=epp.launch["cwd"], env=env,
                                           stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        epp.started_at, epp.exit_code = time.monotonic(), None
        log.info("started the %s EPP of pod %s (pid %d) in %s; log %s", epp.release, epp.pod_id, epp.process.pid,
                 epp.namespace.name, epp.log_path)

    def _stop(self, epp):
        if epp.process is not None and epp.process.poll() is None:
            epp.process.terminate()
            try:
                epp.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                epp.process.kill()
                epp.process.wait()
        if epp.relay is not None:
            epp.relay.close()
        if epp.namespace is not None:
            epp.namespace.delete()
        log.info("stopped the EPP of pod %s", epp.pod_id)

    def _pod_dir(self, pod):
        workdir = self.state_dir / "epps" / f"{pod['metadata']['namespace']}-{pod['metadata']['name']}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        return workdir

    def _write_volumes(self, pod, container, workdir):
        """{mountPath: local directory} for the container's ConfigMap, Secret and emptyDir volumes."""
        namespace = pod["metadata"]["namespace"]
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        mounts = {}
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})
            local = workdir / "volumes" / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                files = self.kube.read_config_map(namespace, volume["configMap"]["name"])
            elif "secret" in volume:
                files = {k: base64.b64decode(v) for k, v in
                         self.kube.read_secret(namespace, volume["secret"]["secretName"]).items()}
            else:
                files = {}
            for key, content in files.items():
                (local / key).write_bytes(content if isinstance(content, bytes) else content.encode())
            target = local / mount["subPath"] if mount.get("subPath") else local
            mounts[mount["mountPath"]] = target
        return mounts

    def _write_kubeconfig(self, pod, workdir):
        service_account = pod["spec"].get("serviceAccountName") or "default"
        token = self.kube.service_account_token(pod["metadata"]["namespace"], service_account, pod, TOKEN_SECONDS)
        host, port = self.api_address
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "pod",
            "clusters": [{"name": "sandbox", "cluster": {"server": f"https://{host}:{port}",
                                                         "certificate-authority-data": self.ca_data}}],
            "users": [{"name": service_account, "user": {"token": token}}],
            "contexts": [{"name": "pod", "context": {"cluster": "sandbox", "user": service_account,
                                                     "namespace": pod["metadata"]["namespace"]}}],
        }
        path = workdir / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def describe(self):
        with self._lock:
            return {epp.pod_id: {
                "release": epp.release,
                "state": "error" if epp.error else "running" if epp.process and epp.process.poll() is None
                else "exited",
                "pid": epp.process.pid if epp.process else None,
                "exit_code": epp.process.poll() if epp.process else None,
                "restarts": epp.restarts,
                "error": epp.error,
                "log": str(epp.log_path) if epp.log_path else None,
            } for epp in self._epps.values()}

    def close(self):
        with self._lock:
            for uid in list(self._epps):
                self._stop(self._epps.pop(uid))


def _tail(path, lines=10):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
