"""Fixtures of the playbook tests: alpha-basic answering, the extra vars that point the
playbooks at the sandbox, playbook runs that never outlive a test, and a load generator
running for the duration of a test."""

import pytest
from igw_sandbox.loadgen import LoadGenerator
from igw_sandbox.waits import wait_until
from migration_harness import ALPHA_SERVED_BY, BASE_MODEL, ClusterView, PlaybookRun, answer_of, api, sandbox_vars

# The load of issue 9: 50 requests per second of the base model, bounded in time and count.
LOAD_RATE = 50
LOAD_MAX_SECONDS = 1800
SETTLE_SECONDS = 60
PAUSE_SECONDS = 2


@pytest.fixture
def flavour():
    """The GKE flavour of the cluster under test; a test parametrizes it to run on both."""
    return "old"


@pytest.fixture
def target_release():
    """The GIE release the playbooks build the v1 stack at (migration_release); a test parametrizes it to
    migrate to another release through that release's real chart, CRDs and endpoint picker."""
    return api.GA_RELEASE


@pytest.fixture
def serving(request, flavour):
    """alpha-basic, on a sandbox of the test's GKE flavour, once the gateway serves the base model through
    the preview pool."""
    if flavour == "old":
        seeded = request.getfixturevalue("alpha_basic")
    else:
        seeded = request.getfixturevalue("sandbox_factory")(flavour, flavour)
        seeded.reset()
        seeded.seed("alpha-basic")
    wait_until("the preview pool to answer", lambda: answer_of(seeded) == (200, ALPHA_SERVED_BY),
               SETTLE_SECONDS, interval=0.5)
    return seeded


@pytest.fixture
def view(serving):
    return ClusterView(serving.kubeconfig)


@pytest.fixture
def migration_vars(serving, tmp_path, target_release):
    """Extra vars that point the playbooks at this sandbox (see sandbox_vars), with the tests' short pause."""
    return {**sandbox_vars(serving, tmp_path / "backups", target_release), "migration_pause_seconds": PAUSE_SECONDS}


@pytest.fixture
def report_dir(tmp_path):
    """Where every playbook run of the test writes its report, as an operator keeps one directory."""
    return tmp_path / "reports"


@pytest.fixture
def start_playbook(serving, migration_vars, report_dir, tmp_path):
    """start_playbook(playbook, label, **extra_vars) -> a started PlaybookRun writing its output to
    tmp_path/<label>.log and its report to report_dir; a run still going at teardown is killed."""
    runs = []

    def start(playbook, label, **extra_vars):
        run = PlaybookRun(playbook, serving, {**migration_vars, "report_dir": str(report_dir), **extra_vars},
                          tmp_path / (label + ".log"))
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()


@pytest.fixture
def load(serving, tmp_path):
    """50 requests per second of the base model through the gateway, from now until the test stops it
    (load.stop() returns the summary) or ends."""
    generator = LoadGenerator(url=serving.gateway_url + "/v1/completions", rate=LOAD_RATE,
                              duration=LOAD_MAX_SECONDS, max_requests=LOAD_RATE * LOAD_MAX_SECONDS,
                              model=BASE_MODEL, summary_path=tmp_path / "load.json")
    generator.start()
    yield generator
    generator.stop()
