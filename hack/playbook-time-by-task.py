"""Where the playbook runs of a test session spend their wall time, by kind of task.

    python3 hack/playbook-time-by-task.py /tmp/pytest-of-$USER/pytest-<N>

Reads every *.log under the given directories that ansible-playbook wrote with the
ansible.posix.profile_tasks callback (the integration tests' playbook runs enable it): after each
task header the callback prints how long the previous task took. Sums those durations by kind of
task (from the task's name) and prints a markdown table and the ten tasks that took longest in all.
"""

import argparse
import re
from collections import defaultdict
from pathlib import Path

# A task's header; PLAY RECAP's is followed by the time of the run's last task.
HEADER = re.compile(r"^(?:(?:TASK|RUNNING HANDLER) \[(?P<name>.*)\]|PLAY RECAP) \*+\s*$")
# profile_tasks: "Friday 04 December 2026  16:41:46 +0000 (0:00:00.021)       0:00:58.422 ****"
TIMING = re.compile(r"\((?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d\.\d+)\)\s+\d+:\d\d:\d\d\.\d+ \*+\s*$")
KINDS = [
    ("waiting for the gateway to program a route", r"programmed|[Pp]rogramm"),
    ("pauses: watching traffic between steps", r"\bWatch\b|[Pp]ause"),
    ("gate probes: requests through the gateway", r"completion requests|[Pp]robe"),
    ("other waits (Deployments, EPPs, Helm, deletions)", r"\b[Ww]ait"),
    ("Helm install, upgrade, uninstall", r"Helm|helm"),
    ("everything else", r""),
]
COMPILED = [(kind, re.compile(pattern)) for kind, pattern in KINDS]


def task_durations(log):
    """(task name, seconds) of every task of one ansible-playbook log that the next header timed."""
    current = None
    for line in log.read_text(errors="replace").splitlines():
        header = HEADER.match(line)
        if header:
            current = header["name"] or "PLAY RECAP"
            continue
        timing = TIMING.search(line)
        if timing and current is not None:
            yield current, int(timing["h"]) * 3600 + int(timing["m"]) * 60 + float(timing["s"])
            current = None


def previous_task_durations(log):
    """profile_tasks prints, under each task's header, the time the task *before* it took."""
    pending = None
    for name, seconds in task_durations(log):
        if pending is not None:
            yield pending, seconds
        pending = name


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directories", nargs="+", type=Path)
    args = parser.parse_args()
    by_kind, by_task, runs = defaultdict(float), defaultdict(float), 0
    for directory in args.directories:
        for log in sorted(directory.rglob("*.log")):
            durations = list(previous_task_durations(log))
            if not durations:
                continue
            runs += 1
            for name, seconds in durations:
                by_task[name] += seconds
                by_kind[next(kind for kind, pattern in COMPILED if pattern.search(name))] += seconds
    total = sum(by_kind.values())
    print(f"{runs} playbook runs, {total:.0f} s of tasks in all.\n")
    print("| kind of task | seconds | share |\n|---|---:|---:|")
    for kind, seconds in sorted(by_kind.items(), key=lambda item: -item[1]):
        print(f"| {kind} | {seconds:.0f} | {seconds / total:.0%} |")
    print("\nThe ten tasks that took longest in all:\n")
    for name, seconds in sorted(by_task.items(), key=lambda item: -item[1])[:10]:
        print(f"- {seconds:.0f} s: {name}")


if __name__ == "__main__":
    main()
