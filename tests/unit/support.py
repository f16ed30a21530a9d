"""What the unit tests share: where the repository is, how to run a playbook, and alpha-basic's names.

The names are those of the upstream samples that scenario alpha-basic installs in the sandbox, so
that a unit test reads like the cluster a user has.
"""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

NAMESPACE = "default"
ALPHA = "vllm-llama3-8b-instruct-preview"  # the preview pool, also its Helm release
ALPHA_EPP = ALPHA + "-epp"
GA = "vllm-llama3-8b-instruct-ga"  # the GA pool the migration installs beside it
GA_EPP = GA + "-epp"
ROUTE = "llm-route"
GATEWAY_NAME = "inference-gateway"
MODEL_SERVER_LABELS = {"app": "vllm-llama3-8b-instruct"}
BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def run_playbook(*args, env):
    """ansible-playbook from the virtualenv with the repository's ansible.cfg; a failed run fails the test.

    ``env`` is the whole environment: each caller says what the run may see.
    """
    completed = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), *map(str, args)], cwd=REPO,
                               env=dict(env, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")),
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


class Clock:
    """A monotonic clock that moves only when the code under test sleeps; remembers each sleep."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
