import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import waiting
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import Conflict
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError


def test_wait_for_gives_up_after_the_timeout_naming_what_it_waited_for():
    ticks = iter(range(100))
    with pytest.raises(MigrationError) as timed_out:
        waiting.wait_for(lambda: False, 3, "the thing", sleep=lambda _: None, clock=lambda: next(ticks))
    assert "the thing" in str(timed_out.value) and "3s" in str(timed_out.value)


def test_poll_sleeps_the_interval_and_never_past_the_timeout():
    now, sleeps = [0.0], []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    polled = waiting.poll(lambda: now[0], lambda value: False, 5, interval=2, clock=lambda: now[0], sleep=sleep)
    assert sleeps == [2, 2, 1] and polled == (5.0, False, 5.0)


def test_poll_returns_the_first_value_that_meets_the_condition():
    values = iter([1, 2, 3, 4])
    polled = waiting.poll(lambda: next(values), lambda value: value == 3, 60, sleep=lambda _: None)
    assert polled.value == 3 and polled.done


class Store:
    """One object with a resourceVersion; ``rivals`` writes of others land before ours."""

    def __init__(self, rivals=0):
        self.obj = {"metadata": {"resourceVersion": "1"}, "value": 0, "theirs": 0}
        self.rivals = rivals
        self.reads = 0

    def read(self):
        self.reads += 1
        return dict(self.obj, metadata=dict(self.obj["metadata"]))

    def write(self, body):
        if self.rivals:
            self.rivals -= 1
            self.obj = dict(self.obj, theirs=self.obj["theirs"] + 1,
                            metadata={"resourceVersion": str(int(self.obj["metadata"]["resourceVersion"]) + 1)})
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise Conflict("modified", status=409)
        self.obj = dict(body, metadata={"resourceVersion": str(int(body["metadata"]["resourceVersion"]) + 1)})
        return self.obj


def test_a_lost_race_is_read_again_and_only_our_change_reapplied(monkeypatch):
    monkeypatch.setattr(waiting, "CONFLICT_BACKOFF", 0)
    store = Store(rivals=2)
    written = waiting.read_modify_write(store.read, lambda live: dict(live, value=7), store.write, "the object")
    assert store.obj["value"] == 7 and store.obj["theirs"] == 2 and store.reads == 3
    assert written.stored == store.obj and written.before["theirs"] == 2


def test_no_write_when_the_change_is_already_there():
    store = Store()
    written = waiting.read_modify_write(store.read, lambda live: None, store.write, "the object")
    assert written.body is None and written.stored is None and store.obj["metadata"]["resourceVersion"] == "1"


def test_endless_races_give_up_naming_the_object(monkeypatch):
    monkeypatch.setattr(waiting, "CONFLICT_BACKOFF", 0)
    store = Store(rivals=1000)
    with pytest.raises(MigrationError, match="the object: 20 writes in a row lost a resourceVersion race"):
        waiting.read_modify_write(store.read, lambda live: dict(live, value=7), store.write, "the object")
    assert store.reads == waiting.CONFLICT_ATTEMPTS
