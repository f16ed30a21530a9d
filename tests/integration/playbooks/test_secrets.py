"""No credential of the connection appears in any output, report or backup, at -vvvv.

The playbooks run with the cluster given only through K8S_AUTH_* (a ServiceAccount token and the
admin's client certificate and key, as AWX credentials pass them); then their whole output, every
report and every backup file is searched for the token, the certificate and the key. The backup
holds Helm release records (Secrets) and must be owner-only.
"""

import base64
import json
import os
import stat
import subprocess

import yaml
from kubernetes import client, config
from runner import REPO, VENV_BIN, ansible_env

ADMIN = "secrets-check"
RUN_TIMEOUT = 900


def _token(sandbox):
    """A token of a ServiceAccount bound to cluster-admin, from the TokenRequest API."""
    api_client = config.new_client_from_config(config_file=sandbox.kubeconfig)
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account("default", {"metadata": {"name": ADMIN}})
    rbac.create_cluster_role_binding({"metadata": {"name": ADMIN},
                                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                  "name": "cluster-admin"},
                                      "subjects": [{"kind": "ServiceAccount", "name": ADMIN, "namespace": "default"}]})
    request = core.create_namespaced_service_account_token(ADMIN, "default", {"spec": {"expirationSeconds": 3600}})
    return request.status.token


def _credentials(sandbox, tmp_path):
    """K8S_AUTH_* for the sandbox without its kubeconfig, and the secret values they carry."""
    kubeconfig = yaml.safe_load(open(sandbox.kubeconfig))
    cluster = kubeconfig["clusters"][0]["cluster"]
    user = kubeconfig["users"][0]["user"]
    files = {}
    for name, data in (("ca.crt", cluster["certificate-authority-data"]), ("client.crt", user["client-certificate-data"]),
                       ("client.key", user["client-key-data"])):
        path = tmp_path / "credentials" / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        files[name] = str(path)
    token = _token(sandbox)
    env = {"K8S_AUTH_KUBECONFIG": "", "K8S_AUTH_HOST": cluster["server"], "K8S_AUTH_API_KEY": token,
           "K8S_AUTH_SSL_CA_CERT": files["ca.crt"], "K8S_AUTH_CERT_FILE": files["client.crt"],
           "K8S_AUTH_KEY_FILE": files["client.key"]}
    secrets = {"token": token, "client-certificate-data": user["client-certificate-data"],
               "client-key-data": user["client-key-data"]}
    for name in ("client.crt", "client.key"):
        # Each line of the PEM body: a leak of the decoded key or certificate, whole or in part.
        body = [line for line in open(files[name]).read().splitlines() if line and not line.startswith("-----")]
        secrets.update(("%s line %d" % (name, number), line) for number, line in enumerate(body) if len(line) >= 40)
    return env, secrets


def _run(playbook, env, extra_vars, check=False):
    command = [str(VENV_BIN / "ansible-playbook"), "-vvvv", str(playbook), "-e", json.dumps(extra_vars)]
    if check:
        command.append("--check")
    # ansible_env sets K8S_AUTH_KUBECONFIG to the sandbox's kubeconfig; the credentials below replace it.
    environment = ansible_env("/nonexistent/kubeconfig", env)
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=REPO,
                          check=False)


def _leaks(text, secrets):
    return sorted(name for name, value in secrets.items() if value in text)


def test_no_credential_appears_in_output_reports_or_backups_at_vvvv(serving, migration_vars, tmp_path):
    env, secrets = _credentials(serving, tmp_path)
    trust = {"SSL_CERT_FILE": serving.env.get("SSL_CERT_FILE")} if serving.env.get("SSL_CERT_FILE") else {}
    env.update(trust)
    common = dict((k, v) for k, v in migration_vars.items() if k != "migration_kubeconfig")
    reports, backups = tmp_path / "reports", tmp_path / "backups"
    backup_play = tmp_path / "backup.yml"
    backup_play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Back up as the migration does", "ansible.builtin.include_role": {
            "name": "inference_gateway.migration.backup"},
            "vars": {"backup_dest": str(backups), "backup_pools": [], "backup_skip": False}}]}]))

    runs = {
        "detect": _run(REPO / "playbooks/detect.yml", env, {"detect_report_dir": str(reports)}),
        "zero_downtime --check": _run(REPO / "playbooks/zero_downtime.yml", env,
                                      {**common, "report_dir": str(reports)}, check=True),
        "backup": _run(backup_play, env, {}),
    }
    for name, run in runs.items():
        failures = [line for line in (run.stdout + run.stderr).splitlines() if "fatal:" in line or "[ERROR]" in line]
        assert run.returncode == 0, (name, failures, run.stdout[-3000:])
        # The run really went through the credentials at -vvvv: it talked to the cluster and logged the modules.
        assert "<127.0.0.1>" in run.stdout or "ESTABLISH LOCAL CONNECTION" in run.stdout, name
        assert _leaks(run.stdout + run.stderr, secrets) == [], name

    written = [p for p in list(reports.rglob("*")) + list(backups.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".json" for p in reports.rglob("*")), "no report written"
    releases = [p for p in backups.rglob("*") if p.is_file() and "helm-releases" in p.parts]
    assert releases, "the backup holds no Helm release record"
    for path in written:
        assert _leaks(path.read_text(errors="replace"), secrets) == [], path
    for path in backups.rglob("*"):
        mode = stat.S_IMODE(os.stat(str(path)).st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    assert stat.S_IMODE(os.stat(str(backups)).st_mode) == 0o700
