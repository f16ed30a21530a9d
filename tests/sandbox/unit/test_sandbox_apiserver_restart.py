"""restart-apiserver: kube-apiserver stops for the time asked and comes back as `up` started it."""

import json

import pytest

from igw_sandbox import cluster, controlplane, layout


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A sandbox whose state says it is up, with the process handling and the clock recorded instead of real."""
    monkeypatch.setattr(layout, "STATE_ROOT", tmp_path / ".sandbox")
    instance = cluster.Sandbox("restart")
    instance.layout.root.mkdir(parents=True)
    ports = {name: 40000 + i for i, name in enumerate(controlplane.PORT_NAMES)}
    binaries = {"kube-apiserver": "/cache/kube-apiserver", "etcd": "/cache/etcd"}
    instance.layout.info.write_text(json.dumps({"ports": ports, "binaries": binaries}))
    events, now = [], [100.0]
    monkeypatch.setattr(cluster.processes, "recorded_pid", lambda root, name: 4242)
    monkeypatch.setattr(cluster.processes, "stop_component",
                        lambda root, name: events.append(("stop", name)) or now.__setitem__(0, now[0] + 10) or [])
    monkeypatch.setattr(cluster.controlplane, "launch", lambda lay, p, b, progress, names: events.append(
        ("start", names, p["kube-apiserver"], b["kube-apiserver"])))
    monkeypatch.setattr(cluster.controlplane, "wait_healthy", lambda lay, p, progress, names: events.append(
        ("ready", names)))
    monkeypatch.setattr(cluster.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(cluster.time, "sleep", lambda seconds: events.append(("sleep", seconds)))
    instance.events = events
    return instance


def test_the_apiserver_stays_down_for_the_seconds_asked_counted_from_the_stop_and_comes_back_on_its_port(sandbox):
    sandbox.restart_apiserver(20)
    # Stopping took 10 s of the 20 (it drains, then SIGKILL); it starts on the port and binary `up` chose.
    assert sandbox.events == [("stop", "kube-apiserver"), ("sleep", 10.0),
                              ("start", ["kube-apiserver"], 40002, "/cache/kube-apiserver"),
                              ("ready", ["kube-apiserver"])]


def test_the_apiserver_is_started_again_when_the_wait_is_interrupted(sandbox, monkeypatch):
    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(cluster.time, "sleep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sandbox.restart_apiserver(20)
    assert sandbox.events[-2:] == [("start", ["kube-apiserver"], 40002, "/cache/kube-apiserver"),
                                   ("ready", ["kube-apiserver"])]


def test_the_apiserver_keeps_its_certificates_and_etcd_data_when_started_again(tmp_path):
    lay = layout.Layout("restart")
    ports = {name: 40000 + i for i, name in enumerate(controlplane.PORT_NAMES)}
    argv = controlplane._argv("kube-apiserver", lay, ports, {"kube-apiserver": "kube-apiserver"})
    assert f"--tls-cert-file={lay.pki / 'kube-apiserver.crt'}" in argv
    assert f"--etcd-servers=http://127.0.0.1:{ports['etcd-client']}" in argv
    assert f"--secure-port={ports['kube-apiserver']}" in argv


def test_the_controller_manager_outlasts_an_apiserver_restart_before_it_marks_nodes_not_ready():
    argv = controlplane._argv("kube-controller-manager", layout.Layout("restart"),
                              {name: 1 for name in controlplane.PORT_NAMES}, {"kube-controller-manager": "kcm"})
    assert "--node-monitor-grace-period=%ds" % controlplane.NODE_MONITOR_GRACE_SECONDS in argv
    assert controlplane.NODE_MONITOR_GRACE_SECONDS > 2 * controlplane.NODE_LEASE_SECONDS
