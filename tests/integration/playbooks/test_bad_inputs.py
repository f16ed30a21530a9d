"""Bad playbook inputs are refused before anything reads or writes the cluster.

Each row runs a migration playbook on alpha-basic with one bad input and proves three things:
the run fails, its message names the migration_* variable, the bad value and the fix (and
never dumps a role's argument spec), and every object of the cluster keeps its resourceVersion.
The rows only read the cluster, so they share one seeded sandbox.
"""

import pytest
from migration_harness import ALPHA_SERVED_BY, ClusterView, answer_of
from runner import run_playbook

from igw_sandbox.waits import wait_until

ZERO_DOWNTIME = "playbooks/zero_downtime.yml"
SIMPLE = "playbooks/simple.yml"
RUN_TIMEOUT = 600

ROWS = [
    ("unknown-release", ZERO_DOWNTIME, {"migration_release": "v9.9.9"},
     ["migration_release 'v9.9.9' is not a GIE release this collection knows", "Set it to one of v1.0.0,", "v1.5.0"]),
    ("unknown-release-simple", SIMPLE, {"migration_release": "v9.9.9"},
     ["migration_release 'v9.9.9' is not a GIE release this collection knows"]),
    ("release-after-the-epp-moved", ZERO_DOWNTIME, {"migration_release": "v1.6.0"},
     ["migration_release v1.6.0 is not supported", "llm-d-router", "Set migration_release to v1.5.0"]),
    ("step-weight-out-of-range", ZERO_DOWNTIME, {"migration_step_weights": [50, 120]},
     ["migration_step_weights [50, 120]", "step weight 120 is not a whole percentage from 1 to 100"]),
    ("step-weights-not-increasing", ZERO_DOWNTIME, {"migration_step_weights": [100, 50]},
     ["migration_step_weights [100, 50]", "must strictly increase"]),
    ("kubeconfig-missing", ZERO_DOWNTIME, {"migration_kubeconfig": "/nonexistent/cluster.kubeconfig"},
     ["migration_kubeconfig names /nonexistent/cluster.kubeconfig, which does not exist",
      "Give the path of this cluster's kubeconfig"]),
    ("context-unknown", ZERO_DOWNTIME, {"migration_context": "gke_nowhere"},
     ["migration_context 'gke_nowhere' is not a context of", "contexts there:", "Set migration_context to one of"]),
]


@pytest.fixture(scope="module")
def seeded_once(sandbox):
    sandbox.up()
    sandbox.reset()
    sandbox.seed("alpha-basic")
    wait_until("the preview pool to answer", lambda: answer_of(sandbox) == (200, ALPHA_SERVED_BY), 60, interval=0.5)
    return sandbox


@pytest.mark.parametrize("playbook, bad_vars, says", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_a_bad_input_is_refused_by_name_and_the_cluster_is_unchanged(seeded_once, tmp_path, playbook, bad_vars,
                                                                     says):
    view = ClusterView(seeded_once.kubeconfig)
    before = view.resource_versions()
    extra = {"migration_kubeconfig": seeded_once.kubeconfig, "migration_helm_binary": seeded_once.helm,
             "migration_backup_dest": str(tmp_path / "backups"), "report_dir": str(tmp_path / "reports"),
             **bad_vars}
    run = run_playbook(playbook, seeded_once.kubeconfig, extra, timeout=RUN_TIMEOUT)
    assert run.returncode != 0, run.stdout[-4000:]
    for words in says:
        assert words in run.stdout, (words, run.stdout[-4000:])
    assert "Nothing was changed." in run.stdout
    assert "argument_spec" not in run.stdout
    assert view.resource_versions() == before
    assert not (tmp_path / "backups").exists()
