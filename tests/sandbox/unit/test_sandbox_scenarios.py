import pytest

from igw_sandbox import scenarios
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
    context = scenarios.Context(directory=None, logs="the gateway log")
    with pytest.raises(SandboxError, match="gateway default/inference-gateway to be programmed with an address"):
        scenarios._wait(kube, context, "default", gateways=["inference-gateway"])
    assert kube.reads >= 1
