"""Run the collection's modules and playbooks the way an operator does: through Ansible.

Integration tests call these instead of importing the modules, so that what
they prove includes argument parsing, check mode, diff and the FQCN lookup.
"""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import yaml
from igw_sandbox.cluster import read_env_file

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def sandbox_trust(kubeconfig):
    """SSL_CERT_FILE of the sandbox this kubeconfig belongs to (its env file lies beside it), if any.

    The sandbox's mirrors of the release downloads and of the chart registry serve with the sandbox
    CA; trusting it as an operator's shell that sourced the env file does is all the collection's
    defaults need besides the mirror's host.
    """
    env_file = Path(kubeconfig).parent / "env"
    if not env_file.exists():
        return {}
    trust = read_env_file(env_file).get("SSL_CERT_FILE")
    return {"SSL_CERT_FILE": trust} if trust else {}


def ansible_env(kubeconfig, extra=None):
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        K8S_AUTH_KUBECONFIG=str(kubeconfig),
        PATH="%s:%s" % (VENV_BIN, env.get("PATH", "")),
        ANSIBLE_NOCOLOR="1",
        **sandbox_trust(kubeconfig),
    )
    env.update(extra or {})
    return env


def run_task(module, args, kubeconfig, check=False, diff=False, env=None, timeout=600):
    """Run one module task on localhost and return its result dict (``failed`` set on failure)."""
    play = [{
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "task under test", module: args, "register": "result", "ignore_errors": True},
                  {"name": "emit", "ansible.builtin.debug": {"var": "result"}}],
    }]
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "task.yml"
        playbook.write_text(yaml.safe_dump(play))
        command = [str(VENV_BIN / "ansible-playbook"), str(playbook)]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        completed = subprocess.run(
            command,
            env=ansible_env(kubeconfig, dict(env or {}, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")),
            capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False,
        )
    if completed.returncode != 0:
        raise AssertionError("ansible-playbook failed to run:\n%s\n%s" % (completed.stdout, completed.stderr))
    output = json.loads(completed.stdout)
    task = output["plays"][0]["tasks"][0]
    return task["hosts"]["localhost"]


def run_playbook(playbook, kubeconfig, extra_vars=None, check=False, diff=False, env=None, timeout=1800,
                 inventory=None):
    """Run a playbook of the collection; return the CompletedProcess (stdout and stderr captured)."""
    command = [str(VENV_BIN / "ansible-playbook"), str(REPO / playbook)]
    if inventory:
        command += ["-i", str(inventory)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    return subprocess.run(command, env=ansible_env(kubeconfig, env), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, check=False)
