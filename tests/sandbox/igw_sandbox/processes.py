"""Background processes of a sandbox: start, find, stop, and what they listen on.

Every process is started in a session of its own (so it survives the command
that started it and its process group can be signalled as a whole) and with
the environment variable MARKER set to the sandbox's state directory. Children
inherit that variable, so a scan of /proc finds every process of a sandbox,
including ones whose parent already exited.
"""

import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

MARKER = "IGW_SANDBOX_STATE_DIR"
STOP_GRACE_SECONDS = 10
EXEC_TIMEOUT = 5


def start(name, argv, state_dir, env=None):
    state_dir = Path(state_dir)
    log_path = state_dir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    (state_dir / "pids").mkdir(exist_ok=True)
    full_env = dict(os.environ, **(env or {}))
    full_env[MARKER] = str(state_dir)
    with open(log_path, "ab") as log:
        process = subprocess.Popen([str(a) for a in argv], cwd=state_dir, env=full_env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (state_dir / "pids" / f"{name}.pid").write_text(f"{process.pid}\n")
    # Popen may return while the kernel is still setting up the new program, when
    # /proc/<pid>/environ reads empty; callers must be able to find it by marker.
    deadline = time.monotonic() + EXEC_TIMEOUT
    while _marker_of(process.pid) != str(state_dir) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return process.pid


def log_path(state_dir, name):
    return Path(state_dir) / "logs" / f"{name}.log"


def log_tail(state_dir, name, lines=15):
    path = log_path(state_dir, name)
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def exit_reporter(state_dir, name):
    """For waits.wait_until(alive=...): None while component `name` runs, else what its log says."""
    def check():
        if recorded_pid(state_dir, name):
            return None
        return f"{name} exited; last lines of its log:\n{log_tail(state_dir, name)}\n"
    return check


def _marker_of(pid):
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = MARKER.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix):].decode(errors="replace")
    return None


def _is_zombie(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def sandbox_pids(state_dir):
    """Every live process carrying this sandbox's marker."""
    wanted = str(Path(state_dir))
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _marker_of(entry.name) == wanted and not _is_zombie(int(entry.name)):
            pids.append(int(entry.name))
    return sorted(pids)


def recorded_pid(state_dir, name):
    """The pid recorded for component `name` if that process is alive and ours."""
    try:
        pid = int((Path(state_dir) / "pids" / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    if _marker_of(pid) != str(Path(state_dir)) or _is_zombie(pid):
        return None
    return pid


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(state_dir, names):
    """Stop the named components in order, then anything else still carrying the marker.

    Each gets SIGTERM to its process group, and SIGKILL if it is still there
    after STOP_GRACE_SECONDS. Returns the pids that had to be killed.
    """
    killed = []
    for name in names:
        killed += stop_component(state_dir, name)
    killed += _terminate(sandbox_pids(state_dir))
    for pid_file in (Path(state_dir) / "pids").glob("*.pid"):
        pid_file.unlink()
    return killed


def stop_component(state_dir, name):
    """Stop one component the same way; returns the pids that had to be killed."""
    pid = recorded_pid(state_dir, name)
    killed = _terminate([pid]) if pid else []
    (Path(state_dir) / "pids" / f"{name}.pid").unlink(missing_ok=True)
    return killed


def _terminate(pids):
    if not pids:
        return []
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline and any(not _is_zombie(p) for p in pids):
        time.sleep(0.1)
    stubborn = [p for p in pids if not _is_zombie(p)]
    for pid in stubborn:
        _signal_group(pid, signal.SIGKILL)
    return stubborn


def _socket_inodes(pid):
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _decode_address(hex_address):
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # /proc/net prints each 32-bit word of the address in host (little-endian) order.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words), int(port, 16)


TCP_LISTEN = "0A"


HOST_NAMESPACE = "host"


class TcpSocket(NamedTuple):
    pid: int
    protocol: str
    listening: bool
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address
    peer_port: int
    namespace: str  # HOST_NAMESPACE, the `ip netns` name of a namespace, or "net:[inode]" of an unnamed one


def _namespace_names():
    """{network namespace inode: name}: the host's (this process's) and those `ip netns` names."""
    names = {os.stat("/proc/self/ns/net").st_ino: HOST_NAMESPACE}
    for entry in Path("/run/netns").glob("*") if Path("/run/netns").is_dir() else []:
        try:
            names.setdefault(entry.stat().st_ino, entry.name)
        except OSError:
            continue
    return names


def _thread_namespaces(pid):
    """{network namespace inode: a /proc/<pid>/task/<tid> in it}: a process's threads may sit in several."""
    found = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.setdefault(os.stat(task / "ns" / "net").st_ino, task)
        except OSError:
            continue
    return found


def tcp_sockets(pids):
    """Every TCP socket owned by `pids`, listening or connected, in whichever network namespace it lives.

    /proc/net/tcp lists one namespace's sockets, so each namespace that a thread of `pids` is in is
    read through such a thread.
    """
    owner, tables = {}, {}
    for pid in pids:
        for inode in _socket_inodes(pid):
            owner[inode] = pid
        for namespace, task in _thread_namespaces(pid).items():
            tables.setdefault(namespace, task)
    names = _namespace_names()
    found = []
    for namespace, task in tables.items():
        for protocol in ("tcp", "tcp6"):
            try:
                lines = (task / "net" / protocol).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if fields[9] in owner:
                    found.append(TcpSocket(owner[fields[9]], protocol, fields[3] == TCP_LISTEN,
                                           *_decode_address(fields[1]), *_decode_address(fields[2]),
                                           names.get(namespace, f"net:[{namespace}]")))
    return found


def listening_sockets(pids):
    return [s for s in tcp_sockets(pids) if s.listening]


def command_name(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
