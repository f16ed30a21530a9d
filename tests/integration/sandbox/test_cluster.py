"""The sandbox cluster does what issue 3 promises, checked the way a user would:
with kubectl and helm against the running control plane."""

import contextlib
import json
import os
import socket
import subprocess
import time

import pytest
from igw_sandbox import controlplane, mirrors, netns, processes, upstream, versions
from igw_sandbox.waits import wait_until

pytestmark = pytest.mark.sandbox

ALPHA_POOL = "vllm-llama3-8b-instruct-preview"
MODEL_SERVER_LABEL = "app=vllm-llama3-8b-instruct"
EPP_LABEL = f"inferencepool={ALPHA_POOL}-epp"
V1_POOL_CRD = "inferencepools.inference.networking.k8s.io"


def run(sandbox, *argv, kubeconfig=None, check=True):
    env = {**os.environ, **sandbox.env}
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
    return result


def kubectl_json(sandbox, *args):
    return json.loads(run(sandbox, "kubectl", *args, "-o", "json").stdout)


def running_and_ready(pods):
    return [p for p in pods if p["status"].get("phase") == "Running"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def server_git_version(sandbox):
    return kubectl_json(sandbox, "version")["serverVersion"]["gitVersion"]


def test_alpha_basic_is_seeded_as_issue_3_describes(alpha_basic):
    pools = kubectl_json(alpha_basic, "get", "inferencepools.inference.networking.x-k8s.io", "-A")["items"]
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pools] == [("default", ALPHA_POOL)]
    assert pools[0]["spec"]["selector"] == {"app": "vllm-llama3-8b-instruct"}

    model_servers = kubectl_json(alpha_basic, "get", "pods", "-l", MODEL_SERVER_LABEL)["items"]
    assert len(running_and_ready(model_servers)) == 3
    epp = kubectl_json(alpha_basic, "get", "pods", "-l", EPP_LABEL)["items"]
    assert len(running_and_ready(epp)) == 1

    releases = json.loads(run(alpha_basic, "helm", "list", "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [(ALPHA_POOL, "deployed")]

    models = {m["metadata"]["name"]: m["spec"]
              for m in kubectl_json(alpha_basic, "get", "inferencemodels")["items"]}
    assert models == {
        "food-review": {"modelName": "food-review", "criticality": "Standard", "poolRef": {
            "group": "inference.networking.x-k8s.io", "kind": "InferencePool", "name": ALPHA_POOL},
            "targetModels": [{"name": "food-review", "weight": 100}]},
        "base-model": {"modelName": "meta-llama/Llama-3.1-8B-Instruct", "criticality": "Critical", "poolRef": {
            "group": "inference.networking.x-k8s.io", "kind": "InferencePool", "name": ALPHA_POOL}},
    }

    gateway = kubectl_json(alpha_basic, "get", "gateway", "inference-gateway")
    assert gateway["spec"]["gatewayClassName"] == "gke-l7-regional-external-managed"
    listeners = gateway["spec"]["listeners"]
    assert [(entry["name"], entry["port"], entry["protocol"]) for entry in listeners] == [("http", 80, "HTTP")]
    route = kubectl_json(alpha_basic, "get", "httproute", "llm-route")
    assert route["spec"]["rules"][0]["backendRefs"][0] == {
        "group": "inference.networking.x-k8s.io", "kind": "InferencePool", "name": ALPHA_POOL, "weight": 1}
    assert route["spec"]["rules"][0]["matches"][0]["path"] == {"type": "PathPrefix", "value": "/"}

    # provider.name=gke renders GKE's own kinds, which the sandbox's baseline must accept.
    for kind in ("healthcheckpolicies.networking.gke.io", "gcpbackendpolicies.networking.gke.io"):
        policy = kubectl_json(alpha_basic, "get", kind, ALPHA_POOL)
        assert policy["spec"]["targetRef"]["name"] == ALPHA_POOL
    kubectl_json(alpha_basic, "get", "clusterpodmonitorings.monitoring.googleapis.com", f"default-{ALPHA_POOL}")


def test_kwok_renews_node_leases_so_nodes_stay_ready(sandbox):
    # Without leases kube-controller-manager marks the fake nodes NotReady a minute after up,
    # and every pod with them.
    listed = kubectl_json(sandbox, "get", "leases", "-n", "kube-node-lease")["items"]
    leases = {lease["metadata"]["name"]: lease["spec"] for lease in listed}
    nodes = [n["metadata"]["name"] for n in kubectl_json(sandbox, "get", "nodes")["items"]]
    assert len(nodes) == 2 and set(nodes) <= set(leases)
    assert all(leases[n].get("renewTime") and leases[n].get("leaseDurationSeconds") for n in nodes)


def test_kubectl_version_shows_the_flavour(sandbox):
    assert server_git_version(sandbox) == versions.GKE_FLAVOURS["old"] == sandbox.env["SANDBOX_GKE_VERSION"]
    assert "version.BuildInfo" in run(sandbox, "helm", "version").stdout


def test_restricted_user_is_refused_until_granted(clean_sandbox):
    restricted = clean_sandbox.restricted_kubeconfig
    refused = run(clean_sandbox, "kubectl", "get", "pods", kubeconfig=restricted, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()
    assert 'User "restricted-user"' in refused.stderr

    run(clean_sandbox, "kubectl", "create", "rolebinding", "restricted-view", "--clusterrole=view",
        "--user=restricted-user", "-n", "default")
    deadline = time.monotonic() + 30
    while run(clean_sandbox, "kubectl", "get", "pods", kubeconfig=restricted, check=False).returncode != 0:
        assert time.monotonic() < deadline, "the RoleBinding never took effect"
        time.sleep(0.5)

    # What the binding did not grant stays refused.
    elsewhere = run(clean_sandbox, "kubectl", "get", "pods", "-n", "kube-system", kubeconfig=restricted, check=False)
    assert elsewhere.returncode != 0 and "forbidden" in elsewhere.stderr.lower()
    write = run(clean_sandbox, "kubectl", "create", "configmap", "x", kubeconfig=restricted, check=False)
    assert write.returncode != 0 and "forbidden" in write.stderr.lower()


def assert_loopback_only(sandbox):
    """On the host only loopback; any other address lives in a network namespace this sandbox made."""
    sockets = sandbox.tcp_sockets()
    ours = netns.prefix_of(sandbox.layout.root) + "-"
    host = [s for s in sockets if s.namespace == processes.HOST_NAMESPACE]
    inside = [s for s in sockets if s.namespace != processes.HOST_NAMESPACE]
    listening = [s for s in host if s.listening]
    assert set(sandbox.info()["ports"].values()) <= {s.port for s in listening}, "a component is not listening"
    assert [s for s in listening if not s.address.is_loopback] == []
    connected = [s for s in host if not s.listening]
    assert connected, "no connection between the components was seen"
    assert [s for s in connected if not s.peer.is_loopback] == []
    assert [s for s in inside if not s.namespace.startswith(ours)] == [], "a socket in a namespace of another owner"
    return inside


def _mirror_connections(sandbox, ports):
    """The sandbox's TCP sockets once every mirror has accepted a connection to its port, else None: the kernel
    completes a connection before the mirror's accept() takes it, and only then is it the mirror's socket."""
    sockets = sandbox.tcp_sockets()
    for component in mirrors.COMPONENTS:
        pid = processes.recorded_pid(sandbox.layout.root, component)
        if not [s for s in sockets if s.pid == pid and not s.listening and s.port == ports[component]]:
            return None
    return sockets


def test_every_sandbox_process_listens_on_and_talks_to_loopback_only(alpha_basic):
    ports = alpha_basic.info()["ports"]
    # Hold a connection to each mirror so that its accepted socket and peer are checked too.
    with contextlib.ExitStack() as connections:
        for component in mirrors.COMPONENTS:
            connections.enter_context(socket.create_connection((controlplane.LOOPBACK, ports[component]), timeout=5))
        sockets = wait_until("every mirror to accept the connection held to it",
                             lambda: _mirror_connections(alpha_basic, ports), 10)
        inside = assert_loopback_only(alpha_basic)
    # The endpoint picker binds every interface, in the pod's own namespace, and dials the model
    # servers at their pod IPs, which exist only in the sandbox's pod network.
    epp_grpc = [s for s in inside if s.listening and s.port == 9002]
    assert epp_grpc and all(s.address.is_unspecified for s in epp_grpc)
    assert [s for s in inside if not s.listening and not s.peer.is_loopback], "no connection to a pod IP was seen"
    for component in mirrors.COMPONENTS:
        pid = processes.recorded_pid(alpha_basic.layout.root, component)
        assert pid, f"{component} is not running"
        owned = [s for s in sockets if s.pid == pid]
        assert [(str(s.address), s.port) for s in owned if s.listening] == [("127.0.0.1", ports[component])]


def test_reset_removes_everything_added_since_up(alpha_basic):
    run(alpha_basic, "kubectl", "create", "namespace", "scratch")
    run(alpha_basic, "kubectl", "create", "configmap", "leftover", "-n", "scratch")
    run(alpha_basic, "kubectl", "create", "clusterrolebinding", "leftover", "--clusterrole=view",
        "--user=restricted-user")
    run(alpha_basic, "kubectl", "apply", "--server-side", "-f", str(upstream.inference_pool_v1_crd()))

    alpha_basic.reset()

    assert json.loads(run(alpha_basic, "helm", "list", "-A", "-o", "json").stdout) == []
    namespaces = {n["metadata"]["name"] for n in kubectl_json(alpha_basic, "get", "namespaces")["items"]}
    assert namespaces == {"default", "kube-system", "kube-public", "kube-node-lease"}
    crds = {c["metadata"]["name"] for c in kubectl_json(alpha_basic, "get", "crds")["items"]}
    assert not {V1_POOL_CRD, "inferencepools.inference.networking.x-k8s.io"} & crds
    assert "gateways.gateway.networking.k8s.io" in crds
    workloads = kubectl_json(alpha_basic, "get", "deployments,pods,services")["items"]
    assert [(w["kind"], w["metadata"]["name"]) for w in workloads] == [("Service", "kubernetes")]
    assert run(alpha_basic, "kubectl", "get", "clusterrolebinding", "leftover", check=False).returncode != 0
    classes = {c["metadata"]["name"] for c in kubectl_json(alpha_basic, "get", "gatewayclasses")["items"]}
    assert classes == {"gke-l7-regional-external-managed", "gke-l7-rilb"}


def test_two_sandboxes_side_by_side_with_the_two_flavours(sandbox, sandbox_factory):
    new = sandbox_factory("new", "new")
    assert new.address != sandbox.address
    assert set(new.info()["ports"].values()).isdisjoint(sandbox.info()["ports"].values())

    assert server_git_version(new) == versions.GKE_FLAVOURS["new"]
    assert server_git_version(sandbox) == versions.GKE_FLAVOURS["old"]
    v1_crd = kubectl_json(new, "get", "crd", V1_POOL_CRD)
    assert v1_crd["metadata"]["labels"]["addonmanager.kubernetes.io/mode"] == "Reconcile"
    assert "v1" in [v["name"] for v in v1_crd["spec"]["versions"] if v["served"]]
    missing = run(sandbox, "kubectl", "get", "crd", V1_POOL_CRD, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    assert_loopback_only(new)


def test_down_leaves_no_process_and_up_works_again(sandbox_factory):
    cycled = sandbox_factory("new", "new")
    apiserver_port = cycled.info()["ports"]["kube-apiserver"]
    assert cycled.pids()

    cycled.down()

    assert cycled.pids() == []
    with pytest.raises(OSError):
        socket.create_connection((controlplane.LOOPBACK, apiserver_port), timeout=2).close()

    cycled.up()
    assert server_git_version(cycled) == versions.GKE_FLAVOURS["new"]
    assert len(kubectl_json(cycled, "get", "nodes")["items"]) == 2
