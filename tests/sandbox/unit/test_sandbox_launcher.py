"""The sandbox launcher's own parts, without a cluster: processes, sockets,
certificates, env files, address allocation and scenario files."""

import ipaddress
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from igw_sandbox import cluster, layout, pki, processes, scenarios
from igw_sandbox.waits import SandboxError


def test_proc_net_addresses_decode_in_host_byte_order():
    assert processes._decode_address("0100007F:1F90") == (ipaddress.ip_address("127.0.0.1"), 8080)
    assert processes._decode_address("00000000000000000000000001000000:0050") == (ipaddress.ip_address("::1"), 80)


def test_tcp_sockets_finds_listening_and_connected_sockets_of_the_given_process():
    with socket.socket() as server:
        server.bind(("127.0.0.3", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.3", port)) as client:
            client_port = client.getsockname()[1]
            found = processes.tcp_sockets([os.getpid()])
            listed = processes.listening_sockets([os.getpid()])
    address = ipaddress.ip_address("127.0.0.3")
    listening = [s for s in found if s.listening]
    assert [(s.address, s.port) for s in listening if s.port == port] == [(address, port)]
    assert any(s.port == client_port and (s.peer, s.peer_port) == (address, port) for s in found)
    assert listed == listening


def test_a_started_process_is_found_by_its_marker_at_once(tmp_path):
    # Reading /proc/<pid>/environ straight after fork can race the exec; start() waits it out.
    for attempt in range(40):
        state_dir = tmp_path / str(attempt)
        state_dir.mkdir()
        pid = processes.start("sleeper", ["sleep", "30"], state_dir)
        try:
            assert processes.recorded_pid(state_dir, "sleeper") == pid
        finally:
            processes.stop(state_dir, ["sleeper"])


def test_stop_ends_children_and_processes_that_ignore_sigterm(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "STOP_GRACE_SECONDS", 1)
    forks = processes.start("forks", ["sh", "-c", "sleep 300 & sleep 300"], tmp_path)
    stubborn = processes.start("stubborn", ["sh", "-c", "trap '' TERM; sleep 300 & wait"], tmp_path)

    def children(pid):
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def started():
        return {forks, stubborn, *children(forks), *children(stubborn)}

    deadline = time.monotonic() + 10
    while not (len(started()) == 5 and set(processes.sandbox_pids(tmp_path)) >= started()) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (len(children(forks)), len(children(stubborn))) == (2, 1)
    assert set(processes.sandbox_pids(tmp_path)) >= started()  # every one of the five carries the marker
    assert processes.recorded_pid(tmp_path, "forks") == forks

    processes.stop(tmp_path, ["stubborn", "forks"])

    deadline = time.monotonic() + 5
    while processes.sandbox_pids(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes.sandbox_pids(tmp_path) == []
    assert processes.recorded_pid(tmp_path, "forks") is None


def test_certificates_carry_the_identities_rbac_sees(tmp_path):
    ca = pki.CertificateAuthority(tmp_path)
    serving = ca.issue("serving", "kube-apiserver", server=True)[0]
    client = ca.issue("client", "admin", ["system:masters"])[0]
    restricted = ca.issue("restricted", "restricted-user")[0]

    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    serving_cert = x509.load_pem_x509_certificate(serving.read_bytes())
    serving_cert.verify_directly_issued_by(ca_cert)
    names = serving_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)

    def subject(path, oid):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        return [a.value for a in cert.subject.get_attributes_for_oid(oid)]

    assert subject(client, NameOID.COMMON_NAME) == ["admin"]
    assert subject(client, NameOID.ORGANIZATION_NAME) == ["system:masters"]
    assert subject(restricted, NameOID.ORGANIZATION_NAME) == []


def test_env_file_reads_back_what_a_shell_would_export(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("export KUBECONFIG=/a/kubeconfig\nexport GATEWAY_URL='http://127.0.10.1:80'\n"
                        "export ODD='with space'\nexport PATH=/bin/helm-dir:\"$PATH\"\n")
    env = cluster.read_env_file(env_file)
    assert env["KUBECONFIG"] == "/a/kubeconfig"
    assert env["GATEWAY_URL"] == "http://127.0.10.1:80"
    assert env["ODD"] == "with space"


def test_each_sandbox_name_gets_its_own_stable_address(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path / ".sandbox")
    monkeypatch.setenv("IGW_SANDBOX_CACHE", str(tmp_path / "cache"))
    first = cluster._allocate_address(layout.Layout("one"))
    second = cluster._allocate_address(layout.Layout("two"))
    assert (first, second) == ("127.0.10.1", "127.0.11.1")
    assert cluster._allocate_address(layout.Layout("one")) == first
    assert (tmp_path / ".sandbox" / ".gitignore").read_text() == "*\n"


def test_sandboxes_of_two_checkouts_never_share_an_address(tmp_path, monkeypatch):
    monkeypatch.setenv("IGW_SANDBOX_CACHE", str(tmp_path / "cache"))
    for checkout in ("checkout-a", "checkout-b"):
        (tmp_path / checkout).mkdir()
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path / "checkout-a" / ".sandbox")
    in_a = cluster._allocate_address(layout.Layout("pytest"))
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path / "checkout-b" / ".sandbox")
    in_b = cluster._allocate_address(layout.Layout("pytest"))
    assert in_a != in_b


def test_a_stopped_sandbox_of_another_checkout_gives_up_its_address_after_the_grace(tmp_path, monkeypatch):
    monkeypatch.setenv("IGW_SANDBOX_CACHE", str(tmp_path / "cache"))
    for checkout in ("checkout-a", "checkout-b"):
        (tmp_path / checkout).mkdir()
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path / "checkout-a" / ".sandbox")
    left_behind = cluster._allocate_address(layout.Layout("pytest"))
    assert cluster._allocate_address(layout.Layout("pytest")) == left_behind  # its own checkout keeps it
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path / "checkout-b" / ".sandbox")
    assert cluster._allocate_address(layout.Layout("fresh")) != left_behind  # within the grace: still held
    monkeypatch.setattr(cluster, "CLAIM_GRACE_SECONDS", -1)
    assert cluster._allocate_address(layout.Layout("later")) == left_behind  # not running: reused


def test_an_address_whose_sandbox_is_gone_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("IGW_SANDBOX_CACHE", str(tmp_path / "cache"))
    for checkout in ("checkout-a", "checkout-b"):
        (tmp_path / checkout).mkdir()
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path / "checkout-a" / ".sandbox")
    gone = layout.Layout("pytest")
    address = cluster._allocate_address(gone)
    gone.address.unlink()
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path / "checkout-b" / ".sandbox")
    assert cluster._allocate_address(layout.Layout("pytest")) == address


@pytest.mark.parametrize("name", [*scenarios.available(), "pools-3"])
def test_scenario_files_use_known_steps_and_versions(name):
    steps = scenarios.load(name).get("steps") or []
    for step in steps:
        (kind, arguments), = step.items()
        assert kind in scenarios.STEPS
        arguments = scenarios.step_arguments(kind, arguments)
        if kind == "apply":
            assert all((scenarios.SCENARIOS_DIR / name / f).exists() for f in arguments.get("files", ()))
        if kind == "apply_upstream":
            assert "@" in scenarios._module(arguments["module"])
        if kind == "helm_install":
            assert "@" in scenarios._module(arguments["chart"]["module"])


def test_scenario_versions_come_from_versions_py():
    assert scenarios._module("sigs.k8s.io/gateway-api-inference-extension@{GIE_ALPHA}").endswith("@v0.3.0")
    with pytest.raises(SandboxError, match="NOPE"):
        scenarios._module("example.com/x@{NOPE}")


def test_processes_that_start_together_on_a_fresh_clone_all_get_the_state_root(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path / ".sandbox")
    errors = []
    for _round in range(50):
        shutil.rmtree(layout.STATE_ROOT, ignore_errors=True)
        barrier = threading.Barrier(4)

        def claim():
            barrier.wait()
            try:
                layout.state_root()
            except OSError as error:
                errors.append(error)

        threads = [threading.Thread(target=claim) for _thread in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert (layout.STATE_ROOT / ".gitignore").read_text() == "*\n"
