"""The controller loop against an in-memory API: delay, status lag, and no needless writes; the watched lists it
reads against a scripted API server."""

import copy
import queue
import threading
import time

import pytest
from sandbox_fakes import alpha_stack, listings, pool_ref, route

from igw_sandbox.gateway.controller import Controller, NotListedYet, WatchedLists

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
    return Controller(api, api, RecordingDataPlane(), DELAY, "127.0.10.1")


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


class WatchingApi:
    """Answers WatchedLists as the API server would: list calls from `kinds` (a kind absent is not served), and
    each watch from the events the test queues, until the test ends the watch with None."""

    def __init__(self, **kinds):
        self.kinds = kinds
        self.lists = 0
        self.events = queue.Queue()

    def list(self, key):
        self.lists += 1
        if key not in self.kinds:
            return None, None
        return copy.deepcopy(self.kinds[key]), str(self.lists)

    def watch(self, key, resource_version, seconds):
        while True:
            event = self.events.get()
            if event is None:
                return
            yield event


def _obj(name, **fields):
    return {"metadata": {"name": name, "namespace": "default", "uid": "uid-" + name}, **fields}


def _names(lists, key):
    items = lists.list(key)
    return None if items is None else sorted((i["metadata"]["name"], i.get("spec")) for i in items)


def _watched(api, key="httproutes"):
    stop = threading.Event()
    lists = WatchedLists(api, [key], stop, retry_seconds=0.01)
    return lists, stop


def _eventually(check, seconds=5):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not reached within %ss" % seconds
        time.sleep(0.01)


def test_watched_lists_follow_the_events_after_the_first_list():
    api = WatchingApi(httproutes=[_obj("a", spec=1)])
    lists, stop = _watched(api)
    try:
        _eventually(lambda: api.lists == 1)
        _eventually(lambda: _names(lists, "httproutes") == [("a", 1)])
        api.events.put({"type": "ADDED", "object": _obj("b", spec=1)})
        api.events.put({"type": "MODIFIED", "object": _obj("a", spec=2)})
        api.events.put({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
        _eventually(lambda: _names(lists, "httproutes") == [("a", 2), ("b", 1)])
        api.events.put({"type": "DELETED", "object": _obj("a", spec=2)})
        _eventually(lambda: _names(lists, "httproutes") == [("b", 1)])
        assert api.lists == 1, "a watch that goes on needs no new list"
    finally:
        stop.set()
        api.events.put(None)


def test_watched_lists_list_again_when_a_watch_ends_and_forget_what_was_deleted_meanwhile():
    api = WatchingApi(httproutes=[_obj("a"), _obj("b")])
    lists, stop = _watched(api)
    try:
        _eventually(lambda: _names(lists, "httproutes") == [("a", None), ("b", None)])
        api.kinds["httproutes"] = [_obj("b")]
        api.events.put({"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}})
        _eventually(lambda: api.lists == 2)
        _eventually(lambda: _names(lists, "httproutes") == [("b", None)])
    finally:
        stop.set()
        api.events.put(None)


def test_a_kind_not_served_is_none_until_its_crd_comes_and_nothing_is_given_before_the_first_list():
    api = WatchingApi()
    lists = WatchedLists(api, [], threading.Event(), retry_seconds=0.01)
    with pytest.raises(NotListedYet):
        lists.list("httproutes")
    lists, stop = _watched(api)
    try:
        _eventually(lambda: api.lists >= 1)
        _eventually(lambda: lists.list("httproutes") is None)
        api.kinds["httproutes"] = [_obj("a")]
        _eventually(lambda: _names(lists, "httproutes") == [("a", None)])
    finally:
        stop.set()
        api.events.put(None)
