"""One sandbox: a loopback Kubernetes control plane dressed as a GKE cluster.

State lives in <repo>/.sandbox/<name>/ (see layout.py); `env` there describes a
running sandbox to shells, make and tests.
"""

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from . import netns, baseline, build, controlplane, mirrors, processes, scenarios, versions
from .gateway.delay import ProgrammingDelay
from .kube import Kube
from .layout import Layout, state_root
from .waits import Progress, SandboxError, wait_until

DEFAULT_NAME = "default"
DEFAULT_PROGRAMMING_DELAY = 2.0
FIRST_ADDRESS_OCTET = 10
GATEWAY = "gateway"
APISERVER = "kube-apiserver"
GATEWAY_MODULE = Path(__file__).resolve().parent / "gateway" / "__main__.py"
# The gateway is ready after its first poll of the API server. On a 2-core machine that other suites (or a
# benchmark) load to an average of 30, that took more than 60 s once (molecule's create failed on it); the wait
# ends as soon as the file is there, so a generous bound costs a quiet machine nothing.
GATEWAY_TIMEOUT = 180
SETTLE_TIMEOUT = 90
SANDBOX_PYTHONPATH = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# A claim this young counts even before its sandbox's processes run.
CLAIM_GRACE_SECONDS = 600


def _address_claims():
    """The machine-wide record of which sandbox holds which address: one file per address naming the
    sandbox's state directory, so that sandboxes of different checkouts never share one."""
    return build.cache_root() / "addresses"


def _holder(claim):
    """The state directory that still holds a claimed address, or None for a stale claim.

    A sandbox keeps its address across down/up within its checkout. Another checkout's sandbox
    holds it only while it runs (or was claimed moments ago and is starting), so the clones that
    CI and developers leave behind never use up the addresses.
    """
    owner = Path(claim.read_text().strip())
    recorded = owner / "address"
    if not recorded.exists() or recorded.read_text().strip() != claim.name:
        return None
    if owner.parent == state_root() or time.time() - claim.stat().st_mtime < CLAIM_GRACE_SECONDS:
        return owner
    return owner if processes.sandbox_pids(owner) else None


def _allocate_address(layout):
    """127.0.<n>.1, one per sandbox on this machine, kept across down/up so it stays stable."""
    claims = _address_claims()
    state_root()  # makes .sandbox/ with its .gitignore
    with _locked(claims / ".lock"):
        if layout.address.exists():
            address = layout.address.read_text().strip()
            claim = claims / address
            if not claim.exists() or _holder(claim) in (None, layout.root):
                claim.write_text(f"{layout.root}\n")
                return address
            layout.address.unlink()  # another checkout's sandbox took it while this one had no claim
        for octet in range(FIRST_ADDRESS_OCTET, 255):
            candidate = f"127.0.{octet}.1"
            claim = claims / candidate
            if claim.exists() and _holder(claim) is not None:
                continue
            layout.root.mkdir(parents=True, exist_ok=True)
            layout.address.write_text(candidate + "\n")
            claim.write_text(f"{layout.root}\n")
            return candidate
    raise SandboxError(f"no free sandbox address left in 127.0.{FIRST_ADDRESS_OCTET}-254.1; remove the sandbox "
                       f"directories named in {claims} that are no longer used")


def _binaries(flavour):
    """component -> path, building whatever the cache lacks."""
    binaries = {name: build.control_plane_binary(name)
                for name in ("etcd", "kube-controller-manager", "kube-scheduler")}
    # The gateway runs them inside the sandbox's network namespace, where the Go proxy cannot be reached: a build
    # there fails on a machine whose module cache lacks one of their modules, so they are built here first.
    build.epp_relay()
    for release in versions.GIE_RELEASES:
        build.epp_binary(release)
    return {**binaries, "kube-apiserver": build.apiserver(flavour), "kwok": build.kwok(), "helm": build.helm(),
            "registry": build.registry()}


def read_env_file(path):
    """KEY -> VALUE of an env file written by `up` (`export KEY=VALUE` lines)."""
    env = {}
    for line in Path(path).read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"] and len(words) == 2 and "=" in words[1]:
            key, value = words[1].split("=", 1)
            env[key] = value
    return env


class Sandbox:
    def __init__(self, name=DEFAULT_NAME, flavour=versions.DEFAULT_FLAVOUR,
                 programming_delay=DEFAULT_PROGRAMMING_DELAY):
        """`flavour` and `programming_delay` matter to `up` only; None there means
        "whatever the running sandbox has, or the default when starting". `programming_delay`
        is seconds, or "LOW:HIGH" for a delay drawn per change (see gateway/delay.py)."""
        if flavour is not None and flavour not in versions.GKE_FLAVOURS:
            raise SandboxError(f"unknown flavour {flavour!r}; known: {', '.join(versions.GKE_FLAVOURS)}")
        self.name = name
        self.flavour = flavour
        # Seconds (a number) or "LOW:HIGH" (a delay drawn per change); kept in ProgrammingDelay.spec's
        # form so that a running sandbox's info.json compares equal to the same delay given again.
        self.programming_delay = None if programming_delay is None else ProgrammingDelay.parse(programming_delay).spec
        self.layout = Layout(name)

    @property
    def env(self):
        if not self.layout.env_file.exists():
            raise SandboxError(f"sandbox {self.name!r} is not up (no {self.layout.env_file})")
        env = read_env_file(self.layout.env_file)
        env["PATH"] = os.pathsep.join([str(Path(env["HELM"]).parent), os.environ.get("PATH", "")])
        return env

    @property
    def kubeconfig(self):
        return self.env["KUBECONFIG"]

    @property
    def restricted_kubeconfig(self):
        return self.env["RESTRICTED_KUBECONFIG"]

    @property
    def address(self):
        return self.env["SANDBOX_ADDRESS"]

    @property
    def helm(self):
        return self.env["HELM"]

    @property
    def gateway_url(self):
        return self.env["GATEWAY_URL"]

    def kube(self):
        return Kube(self.env)

    def pids(self):
        return processes.sandbox_pids(self.layout.root)

    def tcp_sockets(self):
        """A processes.TcpSocket for every TCP socket of a process of this sandbox."""
        return processes.tcp_sockets(self.pids())

    def info(self):
        try:
            return json.loads(self.layout.info.read_text())
        except (OSError, ValueError):
            return None

    def healthy(self):
        info = self.info()
        if not info or not self.layout.env_file.exists():
            return False
        if not controlplane.healthy(self.layout, info["ports"]):
            return False
        if not mirrors.healthy(self.layout, info["ports"]):
            return False
        if GATEWAY_MODULE.exists():
            return bool(processes.recorded_pid(self.layout.root, GATEWAY)) and self.layout.gateway_ready.exists()
        return True

    def up(self):
        progress = Progress(self.name)
        state_root()
        with _locked(self.layout.root / ".lock"):
            if self.healthy():
                self._check_matches(self.info())
                progress.say(f"already up and healthy ({self.layout.root})")
                return self.env
            if self.pids():
                progress.say("stopping what is left of an earlier run that is not healthy")
                self._stop(progress)
            try:
                self._start(progress)
            except BaseException:
                progress.say(f"up failed; stopping what it started (logs stay in {self.layout.logs})")
                self._stop(progress)
                raise
            return self.env

    def down(self):
        progress = Progress(self.name)
        self._stop(progress)

    def stop_apiserver(self):
        """Stop kube-apiserver alone (SIGTERM, as a control-plane restart does), leaving everything else running.

        It stops listening at once; the call returns once the process has exited (it may take
        processes.STOP_GRACE_SECONDS to drain). While it is down the gateway keeps serving the
        configuration it last programmed and the EPPs keep the pods their informers cached, as GKE's
        data plane does; every client of the API server retries on its own.
        """
        if not processes.recorded_pid(self.layout.root, APISERVER):
            raise SandboxError(f"sandbox {self.name!r} has no running {APISERVER} to stop")
        killed = processes.stop_component(self.layout.root, APISERVER)
        address = controlplane.apiserver_url(self.info()["ports"])
        Progress(self.name).say(f"{APISERVER} stopped{' (SIGKILL after the grace time)' if killed else ''}; "
                                f"{address} refuses connections until it is started again")

    def start_apiserver(self):
        """Start kube-apiserver again as `up` started it: the same address, port, certificates and etcd data;
        return once it reports ready."""
        progress = Progress(self.name)
        info = self.info()
        controlplane.launch(self.layout, info["ports"], info["binaries"], progress, [APISERVER])
        controlplane.wait_healthy(self.layout, info["ports"], progress, [APISERVER])
        progress.say(f"{APISERVER} ready again after {progress.elapsed():.1f}s")

    def restart_apiserver(self, down_seconds):
        """Stop kube-apiserver, keep it stopped until `down_seconds` after the stop began, start it again;
        return once it is ready. It is started again even when the wait is interrupted."""
        stopped_at = time.monotonic()
        try:
            self.stop_apiserver()
            time.sleep(max(0.0, stopped_at + down_seconds - time.monotonic()))
        finally:
            self.start_apiserver()

    def seed(self, scenario):
        progress = Progress(self.name)
        scenarios.run(self.kube(), scenario, progress, logs=self.layout.logs, state_dir=self.layout.root)
        progress.say(f"scenario {scenario} seeded")

    def reset(self):
        progress = Progress(self.name)
        if not self.layout.baseline.exists():
            raise SandboxError(f"sandbox {self.name!r} has no baseline ({self.layout.baseline}); run up first")
        progress.say("removing everything added since up")
        baseline.restore(self.kube(), json.loads(self.layout.baseline.read_text()), self.info()["flavour"],
                         log=self.layout.logs)
        progress.say("back at the baseline")

    def status(self):
        """A description of the sandbox for people; raises nothing."""
        info = self.info() or {}
        lines = [f"sandbox {self.name}: {'up and healthy' if self.healthy() else 'not up'}",
                 f"  state dir: {self.layout.root}"]
        for key in ("flavour", "gke_version", "address", "programming_delay"):
            if key in info:
                lines.append(f"  {key}: {info[key]}")
        if info.get("ports"):
            lines.append("  ports: " + ", ".join(f"{k}={v}" for k, v in info["ports"].items()))
        for component in (*controlplane.COMPONENTS, *mirrors.COMPONENTS, GATEWAY):
            pid = processes.recorded_pid(self.layout.root, component)
            lines.append(f"  {component}: {'pid ' + str(pid) if pid else 'not running'}"
                         f" (log: {self.layout.log(component)})")
        for listener in processes.listening_sockets(self.pids()):
            lines.append(f"  listening: {processes.command_name(listener.pid)} (pid {listener.pid}) "
                         f"{listener.protocol} {listener.address}:{listener.port}")
        return "\n".join(lines)

    def _check_matches(self, info):
        wanted = {"flavour": self.flavour, "programming_delay": self.programming_delay}
        for key, value in wanted.items():
            if value is not None and info[key] != value:
                raise SandboxError(f"sandbox {self.name!r} is up with {key}={info[key]}, not {value}; "
                                   f"run down first to change it")

    def _stop(self, progress):
        names = [GATEWAY, *mirrors.COMPONENTS, *reversed(controlplane.COMPONENTS)]
        killed = processes.stop(self.layout.root, names)
        if killed:
            progress.say(f"had to SIGKILL pids {killed}")
        wait_until(f"every process of sandbox {self.name} to exit", lambda: not self.pids(),
                   processes.STOP_GRACE_SECONDS, log=self.layout.logs)
        # The gateway deletes the network namespaces on a clean exit; these are what a killed one left.
        netns.PodNetwork(self.layout.root).delete()
        for env_file in self._env_files():
            env_file.unlink(missing_ok=True)
        progress.say("down: no process of this sandbox is left")

    def _env_files(self):
        files = [self.layout.env_file]
        if self.name == DEFAULT_NAME:
            files.append(state_root() / "env")
        return files

    def _start(self, progress):
        flavour = self.flavour or versions.DEFAULT_FLAVOUR
        delay = DEFAULT_PROGRAMMING_DELAY if self.programming_delay is None else self.programming_delay
        layout = self.layout
        progress.say(f"checking binaries in {build.cache_root()} (any missing one is built now; "
                     "a cold build takes about 15 minutes)")
        binaries = _binaries(flavour)
        address = _allocate_address(layout)
        self._clear_run_state()
        ports = controlplane.free_ports(controlplane.PORT_NAMES + mirrors.PORT_NAMES)
        info = {"name": self.name, "flavour": flavour, "gke_version": versions.GKE_FLAVOURS[flavour],
                "address": address, "programming_delay": delay, "ports": ports,
                "binaries": {k: str(v) for k, v in binaries.items()}}
        progress.say(f"writing certificates and kubeconfigs; address {address}, ports {ports}")
        ca = controlplane.write_credentials(layout, ports)
        layout.info.write_text(json.dumps(info, indent=2) + "\n")
        mirrors_ready = mirrors.start(layout, ca, ports, info["binaries"], progress)
        for component in controlplane.STORAGE_AND_API:
            controlplane.launch(layout, ports, binaries, progress, [component])
            controlplane.wait_healthy(layout, ports, progress, [component])
        controlplane.launch(layout, ports, binaries, progress, controlplane.CONTROLLERS)
        kube = Kube(self._env(info))
        progress.say("installing the GKE baseline: Gateway API CRDs, GatewayClasses, GKE CRDs, nodes")
        baseline.install(kube, baseline.platform_objects(flavour))
        gateway_ready = self._start_gateway(info, progress)
        controlplane.wait_healthy(layout, ports, progress, controlplane.CONTROLLERS)
        progress.say("waiting for kwok nodes Ready and the default ServiceAccount")
        baseline.wait_settled(kube, SETTLE_TIMEOUT, log=layout.logs)
        baseline.warm_pod_ip_pool(kube, SETTLE_TIMEOUT, log=layout.logs)
        gateway_ready()
        mirrors_ready()
        layout.baseline.write_text(json.dumps(baseline.snapshot(kube, flavour), indent=1) + "\n")
        self._write_env(info)
        progress.say(f"up ({flavour} flavour, {info['gke_version']}) in {progress.elapsed():.1f}s")

    def _clear_run_state(self):
        for path in [*self.layout.run_state(), *self._env_files()]:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        previous_logs = self.layout.root / "logs.previous"
        if self.layout.logs.exists():
            shutil.rmtree(previous_logs, ignore_errors=True)
            self.layout.logs.rename(previous_logs)

    def _start_gateway(self, info, progress):
        """Start the gateway; return a function that waits until it is ready."""
        layout = self.layout
        if not GATEWAY_MODULE.exists():
            progress.say(f"WARNING: {GATEWAY_MODULE} does not exist yet: NO GATEWAY IS RUNNING, "
                         f"{self._env(info)['GATEWAY_URL']} will not answer")
            return lambda: None
        progress.say(f"starting the simulated gateway on {info['address']} (log: {layout.log(GATEWAY)})")
        python_path = os.pathsep.join(filter(None, [str(SANDBOX_PYTHONPATH), os.environ.get("PYTHONPATH")]))
        processes.start(GATEWAY, [sys.executable, "-m", "igw_sandbox.gateway",
                                  "--kubeconfig", layout.admin_kubeconfig, "--address", info["address"],
                                  "--programming-delay", info["programming_delay"], "--state-dir", layout.root],
                        layout.root, env={"PYTHONPATH": python_path})

        def wait():
            progress.say("waiting for the gateway to be ready")
            wait_until(f"the gateway to write {layout.gateway_ready}", layout.gateway_ready.exists, GATEWAY_TIMEOUT,
                       log=layout.log(GATEWAY), alive=processes.exit_reporter(layout.root, GATEWAY))

        return wait

    def _env(self, info):
        layout = self.layout
        helm = Path(info["binaries"]["helm"])
        return {
            "SANDBOX_NAME": self.name,
            "SANDBOX_FLAVOUR": info["flavour"],
            "SANDBOX_GKE_VERSION": info["gke_version"],
            "SANDBOX_STATE_DIR": str(layout.root),
            "SANDBOX_ADDRESS": info["address"],
            "SANDBOX_APISERVER": controlplane.apiserver_url(info["ports"]),
            "SANDBOX_PROGRAMMING_DELAY": str(info["programming_delay"]),
            "KUBECONFIG": str(layout.admin_kubeconfig),
            "RESTRICTED_KUBECONFIG": str(layout.restricted_kubeconfig),
            "GATEWAY_URL": f"http://{info['address']}:80",
            "HELM": str(helm),
            "HELM_CONFIG_HOME": str(layout.helm_home / "config"),
            "HELM_CACHE_HOME": str(layout.helm_home / "cache"),
            "HELM_DATA_HOME": str(layout.helm_home / "data"),
            "KUBECACHEDIR": str(layout.kube_cache),
            **mirrors.env(layout, info["ports"]),
        }

    def _write_env(self, info):
        env = self._env(info)
        lines = [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
        lines.append(f'export PATH={shlex.quote(str(Path(env["HELM"]).parent))}:"$PATH"')
        for env_file in self._env_files():
            env_file.write_text("\n".join(lines) + "\n")
