"""How a pod's EPP container becomes a command line (no process is started here)."""

import ipaddress
from pathlib import Path

from sandbox_fakes import epp, model_pod, v0_epp_args

from igw_sandbox import build, netns, processes
from igw_sandbox.gateway import epps


def test_only_ready_pods_with_an_epp_image_run_an_epp():
    service, deployment, epp_pod = epp("pool-epp", v0_epp_args("pool"))
    not_ready = dict(epp_pod, metadata=dict(epp_pod["metadata"], uid="uid-2"),
                     status=dict(epp_pod["status"], conditions=[{"type": "Ready", "status": "False"}]))
    wanted = epps.wanted_epps([epp_pod, not_ready, model_pod("vllm-0")])
    assert list(wanted) == [epp_pod["metadata"]["uid"]]
    container, release = epps.epp_container(epp_pod)
    assert (container["name"], release) == ("epp", "v0.3.0")


def test_paths_under_a_volume_mount_point_to_where_the_volume_was_written():
    mounts = {"/config": Path("/state/epps/p/volumes/plugins"), "/config/extra": Path("/state/extra")}
    args = ["--config-file", "/config/default-plugins.yaml", "--other=/config/extra/x", "/configuration", "-v"]
    assert epps.rewrite_paths(args, mounts) == [
        "--config-file", "/state/epps/p/volumes/plugins/default-plugins.yaml", "--other=/state/extra/x",
        "/configuration", "-v"]


def test_a_relative_path_counts_from_the_containers_working_directory():
    # GIE v0.5's chart passes -configFile config/default-plugins.yaml and mounts the ConfigMap at /config.
    mounts = {"/config": Path("/state/epps/p/volumes/plugins")}
    args = ["-configFile", "config/default-plugins.yaml", "-poolName", "qwen", "other/file", "text"]
    assert epps.rewrite_paths(args, mounts) == [
        "-configFile", "/state/epps/p/volumes/plugins/default-plugins.yaml", "-poolName", "qwen", "other/file", "text"]
    assert epps.rewrite_paths(["settings/config/x.yaml"], mounts, working_dir="/app") == ["settings/config/x.yaml"]
    assert epps.rewrite_paths(["../config/x.yaml"], mounts, working_dir="/app") == [
        "/state/epps/p/volumes/plugins/x.yaml"]


def test_env_takes_literal_values_and_the_pod_fields_the_kubelet_would_fill_in():
    pod = model_pod("epp-0", ip="10.64.0.9")
    container = {"env": [{"name": "USE_STREAMING", "value": "true"},
                         {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                         {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    assert epps.container_env(container, pod) == {"USE_STREAMING": "true", "NAMESPACE": "default",
                                                  "POD_IP": "10.64.0.9"}


def test_each_sandbox_state_directory_gets_its_own_short_namespace_prefix():
    one, other = netns.prefix_of("/work/a/.sandbox/x"), netns.prefix_of("/work/b/.sandbox/x")
    assert one != other and one == netns.prefix_of("/work/a/.sandbox/x")
    # ip netns names become file names and veth names stay under the 15-character limit.
    assert len(one) == len("igw-") + 8


def test_an_image_of_a_release_the_sandbox_does_not_build_is_reported_naming_the_release(tmp_path):
    _service, _deployment, pod = epp("pool-epp", v0_epp_args("pool"))
    pod["spec"]["containers"][0]["image"] = "registry.k8s.io/gateway-api-inference-extension/epp:v9.9.9"
    runner = epps.EppRunner(kube=None, pod_network=None, host=None, state_dir=tmp_path, api_address=None,
                            ca_data=None, binary_for=build.epp_binary)
    runner.sync([pod])
    (state,) = runner.describe().values()
    assert (state["release"], state["state"], state["pid"]) == ("v9.9.9", "error", None)
    assert "v9.9.9" in state["error"] and "GIE_RELEASES" in state["error"]


def _socket(namespace, port, listening=True):
    return processes.TcpSocket(pid=1, protocol="tcp6", listening=listening, address=ipaddress.ip_address("::"),
                               port=port, peer=ipaddress.ip_address("::"), peer_port=0, namespace=namespace)


def test_an_epp_pod_serves_once_its_own_namespace_listens_on_the_port_named_grpc():
    _service, _deployment, first, second = epp("pool-epp", v0_epp_args("pool"), available=2)
    second["metadata"]["uid"] = "second-uid-0000"
    container = dict(second["spec"]["containers"][0], ports=[{"name": "grpc", "containerPort": 9102}])
    second["spec"] = {"containers": [container]}
    prefix = "igw-0123abcd"
    first_ns = netns.pod_namespace_name(prefix, first["metadata"]["uid"])
    second_ns = netns.pod_namespace_name(prefix, second["metadata"]["uid"])
    pods = [first, second, model_pod("vllm-0")]

    assert epps.not_listening(pods, [], prefix) == ["pool-epp-0", "pool-epp-1"]
    # A socket on the right port in another pod's namespace, on the health port, or a connection: not serving.
    near_misses = [_socket(second_ns, 9002), _socket(first_ns, 9003), _socket(first_ns, 9002, listening=False)]
    assert epps.not_listening(pods, near_misses, prefix) == ["pool-epp-0", "pool-epp-1"]
    assert epps.not_listening(pods, [_socket(first_ns, 9002), _socket(second_ns, 9102)], prefix) == []


def test_a_container_without_a_port_named_grpc_serves_on_the_default_ext_proc_port():
    assert epps.ext_proc_port({"ports": [{"name": "metrics", "containerPort": 9090}]}) == 9002
    assert epps.ext_proc_port({"ports": [{"name": "grpc", "containerPort": 9102}]}) == 9102
