"""zero_downtime.yml run the way AWX runs a job: through ansible-runner, from a private data directory.

AWX lays the job out as ansible-runner expects: the project under project/, the
inventory under inventory/, the credential's environment in env/envvars (here the
kubeconfig file credential of docs/awx.md: K8S_AUTH_KUBECONFIG naming a file AWX
wrote) and the extra variables in env/extravars as YAML: its own awx_* variables and
the job template's variables as they are, the survey answers tagged !unsafe so that
they are never templated. The execution environment brings the collection and helm;
here they come from the checkout's .collections link and the sandbox. A "Check" job
runs first and must leave the cluster as it was.
"""

import json
import shutil
from pathlib import Path

import ansible_runner
import pytest
import yaml
from fleet.cluster_state import ClusterState, assert_migrated, assert_untouched
from runner import REPO, VENV_BIN

pytestmark = pytest.mark.sandbox

PLAYBOOK = "playbooks/zero_downtime.yml"
SURVEY = REPO / "docs" / "awx" / "survey-zero_downtime.json"
RUN_TIMEOUT = 1800
PREVIEW_POOL = "default/vllm-llama3-8b-instruct-preview"


class Unsafe(str):
    """A survey answer: AWX writes it with the !unsafe tag."""


class ExtraVarsDumper(yaml.SafeDumper):
    pass


ExtraVarsDumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


def survey_answers(**answers):
    """Every question of the survey answered with its default unless given, as AWX passes them."""
    questions = yaml.safe_load(SURVEY.read_text())["spec"]
    chosen = dict((q["variable"], answers.get(q["variable"], q["default"])) for q in questions)
    assert set(answers) <= set(chosen), "not survey questions: %s" % sorted(set(answers) - set(chosen))
    return dict((name, Unsafe(value) if isinstance(value, str) else value) for name, value in chosen.items())


def private_data_dir(tmp_path, sandbox, job_id, survey):
    job = tmp_path / ("job-%d" % job_id)
    shutil.copytree(REPO / "playbooks", job / "project" / "playbooks")
    (job / "inventory").mkdir(parents=True)
    (job / "inventory" / "hosts").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}))
    (job / "env").mkdir()
    kubeconfig = job / "env" / "kubeconfig"
    shutil.copy(sandbox.kubeconfig, kubeconfig)
    (job / "env" / "envvars").write_text(yaml.safe_dump({
        "K8S_AUTH_KUBECONFIG": str(kubeconfig),
        # The execution environment's collections path and PATH (ansible and helm).
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        "PATH": "%s:%s:/usr/bin:/bin" % (VENV_BIN, Path(sandbox.helm).parent),
        # The execution environment trusts the CA of the organisation's mirrors (here the sandbox's).
        "SSL_CERT_FILE": sandbox.env["SSL_CERT_FILE"],
    }))
    job_template = {
        # The job template points the chart pull and the CRD download at the mirrors.
        "migration_chart_registry": sandbox.env["GIE_CHART_REGISTRY"],
        "migration_gie_download_url": sandbox.env["GIE_DOWNLOAD_URL"],
        "migration_accept_model_name_changes": True,
        "report_dir": str(tmp_path / "reports"),
    }
    awx = {"awx_job_id": job_id, "tower_job_id": job_id, "awx_job_template_name": "IGW zero-downtime migration",
           "awx_user_name": "admin", "awx_job_launch_type": "manual"}
    (job / "env" / "extravars").write_text(yaml.dump(dict(awx, **job_template, **survey), Dumper=ExtraVarsDumper))
    return job


def run_job(tmp_path, sandbox, job_id, check=False, **answers):
    job = private_data_dir(tmp_path, sandbox, job_id, survey_answers(**answers))
    result = ansible_runner.run(private_data_dir=str(job), playbook=PLAYBOOK, ident=str(job_id), quiet=True,
                                timeout=RUN_TIMEOUT, cmdline="--check" if check else None)
    stdout = result.stdout.read()
    stats = [event["event_data"] for event in result.events if event["event"] == "playbook_on_stats"]
    return result, stdout, stats


def test_an_awx_job_migrates_the_cluster_and_its_artifacts_carry_the_outcome(alpha_basic, tmp_path):
    cluster = ClusterState(alpha_basic.kubeconfig)
    backups = tmp_path / "backups"
    before = cluster.snapshot()

    check, stdout = run_job(tmp_path, alpha_basic, 41, check=True, migration_backup_dest=str(backups))[:2]
    assert (check.status, check.rc) == ("successful", 0), stdout[-8000:]
    assert_untouched(before, cluster.snapshot())

    job, stdout, stats = run_job(tmp_path, alpha_basic, 42, migration_backup_dest=str(backups),
                                 migration_pause_seconds=2)
    assert (job.status, job.rc) == ("successful", 0), stdout[-8000:]
    (final,) = stats
    assert final["failures"] == {} and final["ok"]["localhost"] > 0
    artifacts = final["artifact_data"]
    assert artifacts["migration_outcome"] == "succeeded"
    assert artifacts["pools_migrated"] == [PREVIEW_POOL]
    assert artifacts["failed_requests"] == 0
    assert artifacts["backup_path"].startswith(str(backups) + "/")
    assert (Path(artifacts["backup_path"]) / "index.yaml").is_file()
    assert artifacts["migration_clusters"] == {"localhost": dict(
        (key, artifacts[key]) for key in ("migration_outcome", "pools_migrated", "failed_requests", "backup_path",
                                          "report_json"))}
    report = json.loads(Path(artifacts["report_json"]).read_text())
    assert report["outcome"] == "succeeded" and report["gates"] and all(g["passed"] for g in report["gates"])
    assert_migrated(cluster)
