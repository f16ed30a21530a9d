# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The collection's one way to wait and its one way to retry a write.

``poll`` reads until a condition holds or a timeout passes; ``read_modify_write``
applies a change guarded by resourceVersion and, when another writer wins the
race, reads again and re-applies only the change. Every timeout and back-off
default of the collection is here, so that no two loops differ for no reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random
import time
from collections import namedtuple

from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import Conflict, Unreachable
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

# Status written by a controller or the API server changes within seconds; polling faster only loads the API server.
POLL_SECONDS = 2.0
DEFAULT_TIMEOUT = 120
# A busy route (a controller writing status, an operator editing) may win a few races in a row; twenty losses
# in a row mean someone rewrites it continuously, and the operator must look.
CONFLICT_ATTEMPTS = 20
# Upper bound of the random pause after the n-th conflict is n times this; the randomness keeps two
# retrying writers from colliding in lockstep.
CONFLICT_BACKOFF = 0.05


class Polled(namedtuple("Polled", ["value", "done", "waited"])):
    """The last value read, whether it met the condition, and the seconds spent waiting."""

    __slots__ = ()


def poll(read, done, timeout, interval=POLL_SECONDS, clock=time.monotonic, sleep=time.sleep):
    """Call ``read()`` every ``interval`` seconds until ``done(value)`` or ``timeout`` seconds have passed.

    It reads at least once, and once more at the timeout, so that a zero timeout is a single check.
    A read that finds the API server unreachable (each call has already retried for
    cluster.UNREACHABLE_SECONDS) does not end a longer wait: polling goes on until the timeout,
    and only a read still failing then raises.
    """
    started = clock()
    while True:
        try:
            value = read()
        except Unreachable:
            waited = clock() - started
            if waited >= timeout:
                raise
        else:
            met = bool(done(value))
            waited = clock() - started
            if met or waited >= timeout:
                return Polled(value, met, waited)
        sleep(min(interval, timeout - waited))


def wait_for(predicate, timeout, what, clock=time.monotonic, sleep=time.sleep):
    """Poll until predicate() is true; raise MigrationError naming ``what`` after ``timeout`` seconds."""
    if not poll(predicate, bool, timeout, clock=clock, sleep=sleep).done:
        raise MigrationError("timed out after %ss waiting for %s" % (timeout, what))


class Written(namedtuple("Written", ["before", "body", "stored"])):
    """The object the change was applied to, what was written and what the server returned (None, None: no write)."""

    __slots__ = ()


def read_modify_write(read, change, write, what, live=None, sleep=time.sleep):
    """Write ``change(live)`` (None: nothing to change) with ``write(body)``; after a lost race read again.

    ``read()`` returns the live object (and raises when it is gone); ``live`` is a
    copy already read, used for the first attempt. ``what`` names the object in the
    error raised after CONFLICT_ATTEMPTS lost races in a row.
    """
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        if live is None:
            live = read()
        body = change(live)
        if body is None:
            return Written(live, None, None)
        try:
            return Written(live, body, write(body))
        except Conflict:
            sleep(random.uniform(0, CONFLICT_BACKOFF * attempt))
        live = None
    raise MigrationError("%s: %d writes in a row lost a resourceVersion race to another writer; run again once "
                         "it is quieter" % (what, CONFLICT_ATTEMPTS))
