"""Where a test run's CPU goes, by kind of process. Needs root and the acct package (accton).

    python3 hack/cpu-by-kind.py --until-file reports/cpu.stop --out reports/cpu-by-kind.md &
    make test; touch reports/cpu.stop

BSD process accounting records the CPU time of every process that ends, however short it lived
(ansible modules, kubectl, helm); a sample of /proc every second gives the command line of every
process that lives long enough to be seen, and the CPU of those still running at the end. A
process is classified by its command line when it was seen, otherwise by its name and the nearest
ancestor that was seen (a python process under an ansible-playbook task worker is an ansible module).
"""

import argparse
import os
import re
import struct
import subprocess
import tempfile
import time
from collections import defaultdict

# First match wins; matched against the whole command line.
KINDS = [
    ("control plane: kube-apiserver", r"kube-apiserver"),
    ("control plane: etcd", r"/etcd "),
    ("control plane: controller-manager, scheduler, kwok", r"kube-controller-manager|kube-scheduler|/kwok "),
    ("sandbox gateway (routing, model servers)", r"igw_sandbox\.gateway"),
    ("endpoint pickers", r"/epp "),
    ("epp relay", r"epp-relay"),
    ("sandbox up, seed, reset and mirrors", r"igw_sandbox"),
    ("ansible modules", r"AnsiballZ|ansible_module_"),
    ("ansible-playbook and its task workers", r"ansible-playbook|ansible-runner"),
    ("molecule", r"molecule"),
    ("lint and sanity", r"ansible-lint|ansible-test|antsibull|pylint|yamllint|flake8|pycodestyle"),
    ("pytest (test code, load generator)", r"pytest|xdist|execnet"),
]
COMPILED = [(kind, re.compile(pattern)) for kind, pattern in KINDS]
# Short-lived processes that were never seen: by their name (the kernel's 15-character comm).
BY_NAME = {"kubectl": "kubectl", "helm": "helm", "ansible-playboo": "ansible-playbook and its task workers",
           "go": "go build", "compile": "go build", "link": "go build", "ansible-lint": "lint and sanity",
           "ansible-test": "lint and sanity", "molecule": "molecule"}
# comp_t: 13-bit mantissa, 3-bit base-8 exponent, in AHZ ticks.
AHZ = 100
ACCT_V3 = struct.Struct("<BBHIIIIIIf8H16s")


def kind_of(cmdline):
    for kind, pattern in COMPILED:
        if pattern.search(cmdline):
            return kind
    return None


def own_ticks():
    """pid -> (ppid, utime+stime in clock ticks, command line) of every live process."""
    processes = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        processes[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), command)
    return processes


def comp_t(value):
    return (value & 0x1FFF) << (3 * (value >> 13))


def ended_processes(path):
    """(pid, ppid, CPU seconds, name) of every process the accounting file recorded."""
    with open(path, "rb") as records:
        data = records.read()
    for offset in range(0, len(data) - ACCT_V3.size + 1, ACCT_V3.size):
        fields = ACCT_V3.unpack_from(data, offset)
        if fields[1] & 0x0F != 3:
            continue
        pid, ppid = fields[6], fields[7]
        utime, stime = comp_t(fields[10]), comp_t(fields[11])
        yield pid, ppid, (utime + stime) / AHZ, fields[18].split(b"\0")[0].decode(errors="replace")


def measure(stop_file, interval):
    tick = os.sysconf("SC_CLK_TCK")
    accounting = tempfile.NamedTemporaryFile(prefix="cpu-by-kind-", suffix=".pacct", delete=False)
    subprocess.run(["accton", accounting.name], check=True, capture_output=True)
    at_start = own_ticks()
    started = time.monotonic()
    seen, parents = {}, {}
    try:
        while not os.path.exists(stop_file):
            for pid, (ppid, _ticks, command) in own_ticks().items():
                if command:  # the latest: a fork that exec'd is what it exec'd; an exiting one has none
                    seen[pid] = command
                parents[pid] = ppid
            time.sleep(interval)
    finally:
        subprocess.run(["accton", "off"], check=True, capture_output=True)
    at_end = own_ticks()
    elapsed = time.monotonic() - started

    ended = list(ended_processes(accounting.name))
    os.unlink(accounting.name)
    names = {}
    for pid, ppid, _cpu, name in ended:
        parents.setdefault(pid, ppid)
        names.setdefault(pid, name)

    def classify(pid, name):
        if pid in seen and kind_of(seen[pid]):
            return kind_of(seen[pid])
        if name in BY_NAME:
            return BY_NAME[name]
        ancestor, hops = parents.get(pid), 0
        while ancestor and hops < 8:
            above = kind_of(seen.get(ancestor, "")) or BY_NAME.get(names.get(ancestor, ""))
            if above:
                return "ansible modules" if above.startswith("ansible-playbook") else f"short-lived under {above}"
            ancestor, hops = parents.get(ancestor), hops + 1
        return f"other: {name or seen.get(pid, '?')[:40]}"

    seconds = defaultdict(float)
    for pid, _ppid, cpu, name in ended:
        seconds[classify(pid, name)] += max(cpu - at_start.get(pid, (0, 0))[1] / tick, 0)
    for pid, (_ppid, ticks, command) in at_end.items():
        if command:
            seen[pid] = command
        seconds[classify(pid, "")] += max(ticks - at_start.get(pid, (0, 0))[1], 0) / tick
    return seconds, elapsed


def table(seconds, elapsed):
    total = sum(seconds.values())
    lines = [f"Sampled {elapsed:.0f} s of wall time: {total:.0f} CPU-seconds in all "
             f"({total / elapsed:.2f} cores on average).", "",
             "| kind | CPU-seconds | share |", "|---|---:|---:|"]
    for kind, value in sorted(seconds.items(), key=lambda item: -item[1]):
        if value >= total / 200:
            lines.append(f"| {kind} | {value:.0f} | {value / total:.0%} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--until-file", required=True, help="stop once this file exists")
    parser.add_argument("--out", required=True, help="write the table here (markdown)")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    with open(args.out, "w") as out:
        out.write(table(*measure(args.until_file, args.interval)))


if __name__ == "__main__":
    main()
