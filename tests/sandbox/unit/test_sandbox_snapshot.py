import copy

from sandbox_fakes import alpha_stack, listings, model_pod, snapshot

from igw_sandbox.gateway.snapshot import POOL_KEYS, DelayLine, Snapshot
from igw_sandbox.gateway import api


def test_bookkeeping_and_status_changes_do_not_change_the_snapshot():
    raw = listings(*alpha_stack())
    touched = copy.deepcopy(raw)
    for items in touched.values():
        for obj in items:
            obj["metadata"]["resourceVersion"] = "99"
            obj["metadata"]["managedFields"] = [{"manager": "gateway"}]
            obj.setdefault("status", {})["parents"] = [{"conditions": []}]
    assert Snapshot.from_listings(raw) == Snapshot.from_listings(touched)


def test_routing_relevant_changes_do_change_the_snapshot():
    assert snapshot(model_pod("p")) != snapshot(model_pod("p", ready=False))
    assert snapshot(*alpha_stack()) != snapshot(*alpha_stack(available=0))
    assert snapshot(*alpha_stack()) != snapshot(*alpha_stack(), missing=(POOL_KEYS[api.GA_GROUP],))


def test_a_kind_that_is_not_served_is_distinguished_from_an_empty_one():
    snap = snapshot(missing=(POOL_KEYS[api.ALPHA_GROUP],))
    assert not snap.served(POOL_KEYS[api.ALPHA_GROUP])
    assert snap.served(POOL_KEYS[api.GA_GROUP]) and snap.items(POOL_KEYS[api.GA_GROUP]) == ()


def test_a_change_becomes_active_only_after_the_delay():
    line = DelayLine(2.0, "A")
    line.observe(10.0, "B")
    assert not line.advance(11.9) and line.active == "A"
    assert line.advance(12.0) and line.active == "B"


def test_changes_are_replayed_in_order_each_after_the_delay():
    line = DelayLine(2.0, "A")
    line.observe(10.0, "B")
    line.observe(10.5, "C")
    line.observe(10.6, "C")  # unchanged: not queued again
    line.advance(12.2)
    assert line.active == "B"
    assert line.advance(12.5) and line.active == "C"
    assert not line.advance(12.6)


def test_a_change_reverted_before_the_delay_still_passes_through_and_ends_where_it_started():
    line = DelayLine(2.0, "A")
    line.observe(10.0, "B")
    line.observe(10.5, "A")
    assert line.advance(12.0) and line.active == "B"
    assert line.advance(12.5) and line.active == "A"
    assert not line.advance(20.0)
