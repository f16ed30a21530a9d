import copy

import pytest
from sandbox_fakes import alpha_stack, listings, model_pod, snapshot

from igw_sandbox.gateway.snapshot import POOL_KEYS, DelayLine, Snapshot
from igw_sandbox.gateway import api
from igw_sandbox.gateway.delay import ProgrammingDelay


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


# --- a programming delay drawn per change ----------------------------------------------------------


def test_a_delay_is_seconds_or_a_range_and_anything_else_is_refused_naming_the_forms():
    assert ProgrammingDelay.parse("2") == ProgrammingDelay(2.0, 2.0) == ProgrammingDelay.parse(2.0)
    assert ProgrammingDelay.parse("2:8") == ProgrammingDelay(2.0, 8.0)
    # A fixed delay keeps the form sandboxes started before ranges existed recorded.
    assert ProgrammingDelay.parse("2").spec == 2.0 and ProgrammingDelay.parse(" 2.5:8 ").spec == "2.5:8"
    for bad in ("8:2", "-1", "fast", "1:2:3", ""):
        with pytest.raises(ValueError, match="LOW:HIGH"):
            ProgrammingDelay.parse(bad)


def test_a_range_draws_a_delay_per_change_within_the_bounds_the_same_for_the_same_seed():
    delay = ProgrammingDelay.parse("2:8")
    draw = delay.drawer(seed=7)
    draws = [draw() for _draw_number in range(200)]
    assert all(2.0 <= d <= 8.0 for d in draws)
    assert min(draws) < 3.0 and max(draws) > 7.0  # spread over the range, not a constant
    again = delay.drawer(seed=7)
    assert [again() for _draw_number in range(200)] == draws
    other = delay.drawer(seed=8)
    assert [other() for _draw_number in range(200)] != draws
    fixed = ProgrammingDelay.parse("2").drawer(seed=7)
    assert {fixed() for _draw_number in range(5)} == {2.0}


def _line(delays, initial="A"):
    queue = list(delays)
    return DelayLine(lambda: queue.pop(0), initial)


def test_each_change_waits_for_its_own_delay():
    line = _line([5.0])
    assert line.observe(10.0, "B") == 5.0
    assert not line.advance(14.9) and line.active == "A"
    assert line.advance(15.0) and line.active == "B"


def test_a_later_change_programmed_first_wins_and_the_older_one_never_comes_back():
    line = _line([6.0, 1.0])  # B ready at 16, C (seen later) at 11.5
    line.observe(10.0, "B")
    line.observe(10.5, "C")
    assert not line.advance(11.4) and line.active == "A"
    assert line.advance(11.5) and line.active == "C"
    assert not line.advance(16.0) and line.active == "C"  # B was superseded: no step back


def test_an_earlier_change_programmed_first_is_active_until_the_later_one_is_ready():
    line = _line([1.0, 6.0])  # B ready at 11, C at 16.5
    line.observe(10.0, "B")
    line.observe(10.5, "C")
    assert line.advance(11.0) and line.active == "B"
    assert not line.advance(16.4) and line.active == "B"
    assert line.advance(16.5) and line.active == "C"
