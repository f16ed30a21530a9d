"""Run the migration playbooks against a sandbox and look at what they left behind.

`PlaybookRun` starts ansible-playbook in a session of its own, so that a test can
kill it (and every helm or worker process it started) with one SIGKILL, as an
operator's lost SSH session or a cancelled AWX job would. `ClusterView` reads the
cluster with the Kubernetes client, independently of the collection's modules.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from igw_sandbox.gateway.api import STATS_PATH
from igw_sandbox.modelserver import POOL_HEADER
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from runner import REPO, VENV_BIN, ansible_env

sys.path.insert(0, str(REPO / ".collections"))

# The collection's API facts, from their one home, and what the v1 stack of each GIE release needs.
from ansible_collections.inference_gateway.migration.plugins.module_utils import api, releases  # noqa: E402

NS = "default"
ALPHA_POOL = "vllm-llama3-8b-instruct-preview"
GA_POOL = "vllm-llama3-8b-instruct-ga"
GA_EPP = GA_POOL + "-epp"
ALPHA_EPP = ALPHA_POOL + "-epp"
ROUTE = "llm-route"
# alpha-basic's InferenceModels, which become InferenceObjectives of the same names.
MODELS = ("base-model", "food-review")
# A model name both stacks serve unchanged.
BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
ALPHA_SERVED_BY = "%s/%s/%s" % (api.ALPHA_GROUP, NS, ALPHA_POOL)
GA_SERVED_BY = "%s/%s/%s" % (api.GA_GROUP, NS, GA_POOL)
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
OUTPUT_TAIL = 8000
ZERO_DOWNTIME = "playbooks/zero_downtime.yml"
PLAYBOOK_TIMEOUT = 900
WATCH_TIMEOUT = 600
# How often a test looks at the cluster while a playbook runs, to catch a phase as it happens.
WATCH_INTERVAL = 0.1
# Task timings in the log, to see where a slow run spent its time.
TIMED_OUTPUT = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}


def sandbox_vars(sandbox, backup_dest, release=api.GA_RELEASE):
    """Extra vars that point the playbooks at this sandbox, its helm, and its loopback mirrors of the
    release downloads and the chart registry: the defaults with only the host swapped; and the target release."""
    return {
        "migration_release": release,
        "migration_kubeconfig": sandbox.kubeconfig,
        "migration_helm_binary": sandbox.helm,
        "migration_gie_download_url": sandbox.env["GIE_DOWNLOAD_URL"],
        "migration_chart_registry": sandbox.env["GIE_CHART_REGISTRY"],
        "migration_backup_dest": str(backup_dest),
        "migration_accept_model_name_changes": True,
    }


def completion(sandbox, model=BASE_MODEL, address=None, headers=None):
    """(status, response headers, body) of one completion request through the sandbox's Gateway (or the Gateway
    at ``address``), with ``headers`` (a Host, a header a route rule matches) besides the content type."""
    connection = http.client.HTTPConnection(address or sandbox.address, 80, timeout=10)
    try:
        body = json.dumps({"model": model, "prompt": "hi", "max_tokens": 10, "temperature": 0})
        connection.request("POST", "/v1/completions", body=body,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), response.read()
    finally:
        connection.close()


def running_epps(sandbox):
    """Pod (namespace/name) -> what the sandbox gateway knows of the real endpoint picker it runs for that pod:
    ``release`` (whose binary), ``state``, ``restarts``, ``log``."""
    connection = http.client.HTTPConnection(sandbox.address, 80, timeout=10)
    try:
        connection.request("GET", STATS_PATH)
        return json.loads(connection.getresponse().read())["epps"]
    finally:
        connection.close()


def answer_of(sandbox):
    status, headers, _body = completion(sandbox)
    return status, headers.get(POOL_HEADER)


class PlaybookRun:
    """One ansible-playbook process; its output goes to `log_path` as it runs."""

    def __init__(self, playbook, sandbox, extra_vars, log_path):
        self.log_path = Path(log_path)
        command = [str(VENV_BIN / "ansible-playbook"), str(REPO / playbook), "-e", json.dumps(extra_vars)]
        env = ansible_env(sandbox.kubeconfig, {**sandbox.env, **TIMED_OUTPUT})
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.started = time.time()
        self.finished = None

    def running(self):
        return self.process.poll() is None

    def watch(self, what, check, timeout, interval):
        """Poll `check()` while the run goes on and return its first true value; the run ending first fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError("%s ended before %s:\n%s" % (self.log_path.name, what, self.tail()))
            value = check()
            if value:
                return value
            time.sleep(interval)
        self.kill()
        raise AssertionError("no %s within %d s of %s:\n%s" % (what, timeout, self.log_path.name, self.tail()))

    def wait(self, timeout):
        """The exit code; a run that outlives `timeout` is killed and fails the test."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not finish within %d s:\n%s" % (self.log_path.name, timeout, self.tail()))
        self.finished = time.time()
        return code

    def kill(self):
        """SIGKILL to the whole process group: ansible-playbook, its workers and any helm they run."""
        if self.running():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self.finished = self.finished or time.time()

    @property
    def output(self):
        return self.log_path.read_text()

    def tail(self):
        return self.output[-OUTPUT_TAIL:]

    def recap(self):
        """ok, changed, unreachable and failed of the PLAY RECAP."""
        match = RECAP.search(self.output)
        assert match, "no PLAY RECAP in the output:\n" + self.tail()
        return dict(zip(("ok", "changed", "unreachable", "failed"), (int(n) for n in match.groups())))


def rule_v1_percent(route, rule_index):
    """The share in percent (rounded down) of one rule's traffic that goes to v1 pools (a weight left out is 1)."""
    refs = route["spec"]["rules"][rule_index]["backendRefs"]
    total = sum(ref.get("weight", 1) for ref in refs)
    return 100 * sum(ref.get("weight", 1) for ref in refs if ref.get("group") == api.GA_GROUP) // total if total else 0


def read_reports(report_dir):
    """The JSON reports written into `report_dir`, oldest first, after checking each has its Markdown twin."""
    reports = []
    for json_path in sorted(Path(report_dir).glob("migration-localhost-*.json")):
        markdown = json_path.with_suffix(".md").read_text()
        assert markdown.startswith("# Migration report: localhost"), markdown[:200]
        reports.append(json.loads(json_path.read_text()))
    return reports


class ClusterView:
    """The sandbox as the Kubernetes client sees it."""

    def __init__(self, kubeconfig):
        api_client = config.new_client_from_config(config_file=kubeconfig)
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.extensions = client.ApiextensionsV1Api(api_client)

    def items(self, rtype, namespace=NS):
        """The objects of a custom resource type, or None when the type is not served."""
        try:
            listed = self.custom.list_namespaced_custom_object(rtype.group, rtype.version, namespace, rtype.plural)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return listed["items"]

    def names(self, rtype, namespace=NS):
        items = self.items(rtype, namespace)
        return None if items is None else sorted(i["metadata"]["name"] for i in items)

    def route(self):
        return self.custom.get_namespaced_custom_object(api.HTTP_ROUTE.group, api.HTTP_ROUTE.version, NS,
                                                        api.HTTP_ROUTE.plural, ROUTE)

    def v1_percent(self):
        """The v1 pool's share of llm-route's traffic in percent (Gateway API: a weight left out is 1)."""
        refs = [ref for rule in self.route()["spec"]["rules"] for ref in rule.get("backendRefs") or []]
        total = sum(ref.get("weight", 1) for ref in refs)
        to_v1 = sum(ref.get("weight", 1) for ref in refs if ref.get("group") == api.GA_GROUP
                    and ref["name"] == GA_POOL)
        return 100.0 * to_v1 / total if total else 0.0

    def crd_names(self):
        return set(crd.metadata.name for crd in self.extensions.list_custom_resource_definition().items)

    def helm_releases(self):
        """Release name -> status of its latest revision, from Helm's release Secrets."""
        records = [secret.metadata.labels
                   for secret in self.core.list_namespaced_secret(NS, label_selector="owner=helm").items]
        return dict((labels["name"], labels["status"]) for labels in sorted(records, key=lambda l: int(l["version"])))

    def resource_versions(self):
        """(kind, namespace, name) -> resourceVersion of everything a migration could write in NS, and the CRDs:
        equal before and after a run proves the run wrote nothing."""
        versions = dict((("CustomResourceDefinition", None, crd.metadata.name), crd.metadata.resource_version)
                        for crd in self.extensions.list_custom_resource_definition().items)
        for rtype in (api.HTTP_ROUTE, api.ALPHA_POOL, api.INFERENCE_MODEL, api.GA_POOL, api.INFERENCE_OBJECTIVE):
            for item in self.items(rtype) or []:
                versions[(rtype.kind, NS, item["metadata"]["name"])] = item["metadata"]["resourceVersion"]
        for kind, listed in (("Deployment", self.apps.list_namespaced_deployment(NS)),
                             ("Service", self.core.list_namespaced_service(NS)),
                             ("Secret", self.core.list_namespaced_secret(NS)),
                             ("ConfigMap", self.core.list_namespaced_config_map(NS))):
            for item in listed.items:
                versions[(kind, NS, item.metadata.name)] = item.metadata.resource_version
        return versions

    def deployment_names(self):
        return sorted(d.metadata.name for d in self.apps.list_namespaced_deployment(NS).items)

    def scale(self, deployment, replicas):
        self.apps.patch_namespaced_deployment_scale(deployment, NS, {"spec": {"replicas": replicas}})


def assert_no_failed_request(summary):
    """What the load generator counted (LoadGenerator.stop()'s summary): requests sent, none failed."""
    assert summary["sent"] > 0
    assert summary["failed"] == 0, summary["failure_windows"]


def assert_migrated(view, release=api.GA_RELEASE):
    """The end state of a finished migration of alpha-basic to GIE ``release``."""
    crds = view.crd_names()
    assert not crds & set(api.ALPHA_CRDS), "preview CRDs left: %s" % sorted(crds & set(api.ALPHA_CRDS))
    assert set(releases.facts(release).stack_crds) <= crds, sorted(crds)
    assert view.names(api.GA_POOL) == [GA_POOL]
    objectives = view.items(api.INFERENCE_OBJECTIVE)
    assert sorted(o["metadata"]["name"] for o in objectives) == list(MODELS)
    assert all(o["spec"]["poolRef"]["name"] == GA_POOL and o["spec"]["poolRef"].get("group", api.GA_GROUP)
               == api.GA_GROUP for o in objectives), objectives
    route = view.route()
    assert view.v1_percent() == 100.0, route["spec"]["rules"]
    assert api.ALPHA_GROUP not in json.dumps(route["spec"]), route["spec"]
    assert view.helm_releases() == {GA_POOL: "deployed"}
    assert ALPHA_EPP not in view.deployment_names()


def assert_v1_stack_of_release(sandbox, view, release, pools=((NS, GA_POOL),)):
    """The v1 stack of each pool (namespace, v1 pool name) is that of GIE ``release``: its chart's EPP image, the
    real EPP binary of that release running for the EPP pod without a restart or an RBAC refusal in its log, the
    preview pool's failure mode (the scenarios give none: FailClose) although the v1.4+ charts default to FailOpen,
    and the GKE health check on the v1 pool's target port."""
    running = running_epps(sandbox)
    for namespace, name in pools:
        epp_name = name + "-epp"
        deployment = view.apps.read_namespaced_deployment(epp_name, namespace)
        (container,) = [c for c in deployment.spec.template.spec.containers if c.name == "epp"]
        assert container.image.endswith("/epp:" + release), (namespace, name, container.image)
        epps = dict((pod, epp) for pod, epp in running.items() if pod.startswith("%s/%s-" % (namespace, epp_name)))
        assert [(epp["release"], epp["state"], epp["restarts"]) for epp in epps.values()] == [
            (release, "running", 0)], (namespace, name, epps)
        log = Path(list(epps.values())[0]["log"]).read_text(errors="replace")
        assert "forbidden" not in log, log[-OUTPUT_TAIL:]
        pool = view.custom.get_namespaced_custom_object(api.GA_POOL.group, api.GA_POOL.version, namespace,
                                                        api.GA_POOL.plural, name)
        assert pool["spec"]["endpointPickerRef"]["failureMode"] == api.DEFAULT_FAILURE_MODE, pool["spec"]
        policy = view.custom.get_namespaced_custom_object(api.HEALTH_CHECK_POLICY.group,
                                                          api.HEALTH_CHECK_POLICY.version, namespace,
                                                          api.HEALTH_CHECK_POLICY.plural, name)
        assert policy["spec"]["targetRef"]["group"] == api.GA_GROUP
        assert policy["spec"]["default"]["config"]["httpHealthCheck"]["port"] == \
            pool["spec"]["targetPorts"][0]["number"]
