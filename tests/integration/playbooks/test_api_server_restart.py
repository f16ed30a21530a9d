"""Issue 20: the API server restarts in the middle of phase 2 of a zero-downtime run under load.

kube-apiserver is stopped for API_SERVER_DOWN_SECONDS once the run has begun phase 2, then started
again on the same port with the same certificates and etcd data. The run either rides over it (every
call of the collection's modules is retried for cluster.UNREACHABLE_SECONDS, and the output's warnings
name the calls that were) or fails naming the call, and then the next run finishes. Clients never
notice: the gateway keeps serving what it last programmed, as GKE's data plane does while the control
plane is down.
"""

import pytest
from migration_harness import (
    PLAYBOOK_TIMEOUT, WATCH_INTERVAL, WATCH_TIMEOUT, ZERO_DOWNTIME, assert_migrated, assert_no_failed_request,
    read_reports,
)

pytestmark = pytest.mark.sandbox

API_SERVER_DOWN_SECONDS = 20
# What a run's output says when a call of the collection's modules met the API server down: a call
# that answered after retries (a warning), or one that did not within the retry time (the failure).
RODE_OVER = "while the API server was unreachable"
GAVE_UP = "the API server was unreachable for"


def test_zero_downtime_run_through_an_api_server_restart_in_phase_2_finishes_with_no_failed_request(
        serving, view, load, start_playbook, report_dir):
    run = start_playbook(ZERO_DOWNTIME, "restart")
    run.watch("phase 2 to begin", lambda: "Phase 2 |" in run.output, WATCH_TIMEOUT, WATCH_INTERVAL)
    serving.restart_apiserver(API_SERVER_DOWN_SECONDS)
    code = run.wait(PLAYBOOK_TIMEOUT)

    if code == 0:
        runs = [run]
        assert RODE_OVER in run.output, "no call met the API server down:\n" + run.tail()
    else:
        # A failed run names the call that found the API server down and says that running again resumes.
        assert GAVE_UP in run.output and "run the playbook again" in run.output, run.tail()
        resumed = start_playbook(ZERO_DOWNTIME, "resumed")
        assert resumed.wait(PLAYBOOK_TIMEOUT) == 0, resumed.tail()
        runs = [run, resumed]
    traffic = load.stop()

    assert_migrated(view)
    assert read_reports(report_dir)[-1]["outcome"] == "succeeded"
    # The load ran from before the first run until after the last, through the outage, and never failed.
    assert traffic["started"] < runs[0].started and traffic["finished"] > runs[-1].finished
    assert_no_failed_request(traffic)
