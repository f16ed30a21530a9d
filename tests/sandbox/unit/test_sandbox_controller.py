"""The controller loop against an in-memory API: delay, status lag, and no needless writes."""

import copy
import threading

from sandbox_fakes import alpha_stack, listings, pool_ref, route

from igw_sandbox.gateway.controller import Controller

DELAY = 2.0


class FakeApi:
    """Serves list calls from `objects` and applies status merge patches to them."""

    def __init__(self, *objects):
        self.lists = listings(*copy.deepcopy(objects))
        self.writes = []

    def list(self, key):
        return copy.deepcopy(self.lists[key])

    def patch_status(self, update):
        self.writes.append(update)
        for obj in self.lists[update.key]:
            if (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]) == (update.namespace, update.name):
                obj.setdefault("status", {}).update(copy.deepcopy(update.status))

    def route(self):
        return self.lists["httproutes"][0]


class RecordingDataPlane:
    def __init__(self):
        self.programmes = []

    def activate(self, programme):
        self.programmes.append(programme)
        return {}


def _controller(api):
    return Controller(api, RecordingDataPlane(), DELAY, "127.0.10.1")


def _route_generations(api):
    (parent,) = api.route()["status"]["parents"]
    return {c["observedGeneration"] for c in parent["conditions"]}


def test_first_poll_programs_what_exists_and_a_second_poll_writes_nothing():
    api = FakeApi(*alpha_stack(), route("llm-route", [{"backendRefs": [pool_ref("vllm-llama3-8b-instruct-preview")]}]))
    controller = _controller(api)
    controller.poll_once(0.0, threading.Event())
    assert len(controller.dataplane.programmes) == 1
    assert {w.key for w in api.writes} == {"gatewayclasses", "gateways", "httproutes",
                                           "inferencepools.inference.networking.x-k8s.io"}
    api.writes.clear()
    controller.poll_once(0.25, threading.Event())
    assert api.writes == [] and len(controller.dataplane.programmes) == 1


def test_a_route_change_is_programmed_and_reported_only_after_the_delay():
    api = FakeApi(*alpha_stack(), route("llm-route", [{"backendRefs": [pool_ref("vllm-llama3-8b-instruct-preview")]}]))
    controller = _controller(api)
    controller.poll_once(0.0, threading.Event())
    api.route()["metadata"]["generation"] = 2
    api.route()["spec"]["rules"][0]["matches"] = [{"path": {"type": "Exact", "value": "/v1/completions"}}]
    api.writes.clear()

    controller.poll_once(1.0, threading.Event())
    controller.poll_once(2.9, threading.Event())
    assert len(controller.dataplane.programmes) == 1
    assert _route_generations(api) == {1} and api.writes == []

    controller.poll_once(3.0, threading.Event())
    assert len(controller.dataplane.programmes) == 2
    assert _route_generations(api) == {2}


def test_a_poll_interrupted_by_stop_changes_nothing():
    api = FakeApi(*alpha_stack())
    controller = _controller(api)
    stop = threading.Event()
    stop.set()
    controller.poll_once(0.0, stop)
    assert controller.dataplane.programmes == [] and api.writes == []
