import ipaddress

import pytest
from sandbox_fakes import epp, v0_epp_args

from igw_sandbox import netns, processes, scenarios
from igw_sandbox.kube import load_documents
from igw_sandbox.waits import SandboxError


class FakeKube:
    """get_json answers from a dict keyed by (resource, name); `reads` counts the calls."""

    def __init__(self, objects):
        self.objects = objects
        self.reads = 0

    def get_json(self, resource, name, *args):
        self.reads += 1
        return self.objects[(resource, name)]


def _status(*conditions, **fields):
    return {"status": dict(conditions=[{"type": t, "status": s} for t, s in conditions], **fields)}


GATEWAY = "gateways.gateway.networking.k8s.io"
ROUTE = "httproutes.gateway.networking.k8s.io"


def test_a_gateway_serves_once_programmed_with_an_address():
    kube = FakeKube({
        (GATEWAY, "ready"): _status(("Programmed", "True"), addresses=[{"value": "127.0.10.1"}]),
        (GATEWAY, "no-address"): _status(("Programmed", "True")),
        (GATEWAY, "not-programmed"): _status(("Programmed", "False"), addresses=[{"value": "127.0.10.1"}]),
        (GATEWAY, "no-status"): {},
    })
    names = ("ready", "no-address", "not-programmed", "no-status")
    assert [scenarios._gateway_serving(kube, "default", n) for n in names] == [True, False, False, False]


def test_a_route_resolves_once_every_parent_accepts_it_with_resolved_refs():
    def parents(*entries):
        return {"status": {"parents": [_status(*e)["status"] for e in entries]}}

    kube = FakeKube({
        (ROUTE, "ready"): parents([("Accepted", "True"), ("ResolvedRefs", "True")]),
        (ROUTE, "one-parent-unresolved"): parents([("Accepted", "True"), ("ResolvedRefs", "True")],
                                                  [("Accepted", "True"), ("ResolvedRefs", "False")]),
        (ROUTE, "no-parent-yet"): {"status": {"parents": []}},
    })
    names = ("ready", "one-parent-unresolved", "no-parent-yet")
    assert [scenarios._route_resolved(kube, "default", n) for n in names] == [True, False, False]


def test_wait_gives_up_naming_the_gateway_that_never_serves(monkeypatch):
    monkeypatch.setattr(scenarios, "WAIT_TIMEOUT", 0.2)
    kube = FakeKube({(GATEWAY, "inference-gateway"): _status(("Programmed", "False"))})
    context = scenarios.Context(directory=None, logs="the gateway log", state_dir=None)
    with pytest.raises(SandboxError, match="gateway default/inference-gateway to be programmed with an address"):
        scenarios._wait(kube, context, "default", gateways=["inference-gateway"])
    assert kube.reads >= 1


class DeploymentKube:
    """A Deployment and its pods, as kubectl get answers for them."""

    def __init__(self, deployment, pods):
        self.deployment, self.pods = deployment, pods

    def get_json(self, resource, *args):
        if resource == "deployment":
            return self.deployment
        assert resource == "pods" and args[-2:] == ("-l", "inferencepool=pool-epp"), args
        return {"items": self.pods}


def test_the_seed_waits_until_the_endpoint_picker_of_an_available_deployment_listens(monkeypatch, tmp_path):
    _service, deployment, pod = epp("pool-epp", v0_epp_args("pool"))
    deployment["spec"]["selector"] = {"matchLabels": {"inferencepool": "pool-epp"}}
    deployment["metadata"]["generation"] = 1
    deployment["status"] = {"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1}
    kube = DeploymentKube(deployment, [pod])
    context = scenarios.Context(directory=None, logs="the gateway log", state_dir=tmp_path)
    sockets = []
    monkeypatch.setattr(scenarios.processes, "sandbox_pids", lambda state_dir: [1])
    monkeypatch.setattr(scenarios.processes, "tcp_sockets", lambda pids: sockets)
    monkeypatch.setattr(scenarios, "WAIT_TIMEOUT", 0.2)

    with pytest.raises(SandboxError, match="the endpoint pickers of deployment default/pool-epp to listen"):
        scenarios._wait(kube, context, "default", deployments=["pool-epp"])

    namespace = netns.pod_namespace_name(netns.prefix_of(tmp_path), pod["metadata"]["uid"])
    sockets.append(processes.TcpSocket(1, "tcp6", True, ipaddress.ip_address("::"), 9002,
                                       ipaddress.ip_address("::"), 0, namespace))
    scenarios._wait(kube, context, "default", deployments=["pool-epp"])


def test_a_list_document_is_read_as_its_items(tmp_path):
    manifest = tmp_path / "list.yaml"
    manifest.write_text("# one document\napiVersion: v1\nkind: List\nitems:\n"
                        "- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"
                        "- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n"
                        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n")
    assert [d["metadata"]["name"] for d in load_documents(manifest)] == ["a", "b", "c"]


def test_a_generated_pools_scenario_gives_each_pool_its_own_servers_release_model_and_route():
    steps = scenarios.load("pools-12")["steps"]
    releases = [step["helm_install"] for step in steps if "helm_install" in step]
    documents = [d for step in steps if "apply" in step for d in step["apply"]["documents"]]
    servers = [d for d in documents if d["kind"] == "Deployment"]
    models = [d for d in documents if d["kind"] == "InferenceModel"]
    routes = [d for d in documents if d["kind"] == "HTTPRoute"]
    pools = [release["release"] for release in releases]
    assert pools[0] == "pool-01-preview" and len(set(pools)) == 12
    # Each release's pool selects the model servers of its own name, and nothing else does.
    assert [r["set"]["inferencePool.modelServers.matchLabels.app"] for r in releases] == [
        s["spec"]["template"]["metadata"]["labels"]["app"] for s in servers]
    assert [m["spec"]["poolRef"]["name"] for m in models] == pools
    assert [r["spec"]["rules"][0]["backendRefs"][0]["name"] for r in routes] == pools
    assert len({h for r in routes for h in r["spec"]["hostnames"]}) == 12
    # Every step waits for what it made: each model server and endpoint picker, the Gateway and each route.
    (wait,) = [step["wait"] for step in steps if "wait" in step]
    assert len(wait["deployments"]) == 24 and len(wait["routes"]) == 12


def test_the_hostnames_of_generated_pools_match_their_names():
    assert scenarios.pool_names(2) == [("pool-1-preview", "pool-1.example.com"), ("pool-2-preview", "pool-2.example.com")]
    with pytest.raises(SandboxError, match="pools-N"):
        scenarios.load("pools-0")
