"""Sandbox fixtures for the integration suite.

- `sandbox`: the session's sandbox (flavour old), brought up once per session.
- `clean_sandbox`: that sandbox, reset to the just-after-up baseline for this test.
- `alpha_basic`: a clean sandbox seeded with scenario alpha-basic.
- `sandbox_factory(name, flavour="old", programming_delay=2.0)`: another sandbox, up, side by
  side with the first (`programming_delay` as for `up --programming-delay`, e.g. "1:4").

An idle sandbox costs an eighth of a core (docs/testing.md), so a factory sandbox is stopped
as soon as the worker's next test is in another module than the one that last asked for it;
the next request brings it up again in about 15 seconds. Every sandbox still up is stopped at
the end of the session. IGW_SANDBOX_KEEP stops none of them, during or after the session (the
next session finds them up and reuses them). Sandboxes are named
after IGW_SANDBOX_NAME (default "pytest") and the pytest-xdist worker (pytest-gw0, ...),
so a session never touches the `default` sandbox of `make sandbox-up` and parallel
workers never share one; a lock keeps two sessions of one name apart.
"""

import fcntl
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))

from igw_sandbox.cluster import DEFAULT_PROGRAMMING_DELAY, Sandbox  # noqa: E402  (needs the path above)
from igw_sandbox.layout import state_root  # noqa: E402

# Under pytest-xdist each worker (gw0, gw1, ...) drives sandboxes of its own.
SESSION_NAME = "-".join(filter(None, [os.environ.get("IGW_SANDBOX_NAME", "pytest"),
                                      os.environ.get("PYTEST_XDIST_WORKER")]))
KEEP = bool(os.environ.get("IGW_SANDBOX_KEEP"))


def pytest_configure(config):
    config.addinivalue_line("markers", "sandbox: needs the loopback Kubernetes sandbox (tests/sandbox)")


def pytest_collection_modifyitems(items):
    """The longest tests (a module that sets LONGEST = True) first, the rest in their order: the workers start the
    long migrations at once and fill the end of the run with short tests, instead of ending on a long one."""
    items.sort(key=lambda item: not getattr(item.module, "LONGEST", False))


@pytest.fixture(scope="session")
def _sandbox_session():
    """Holds the session's lock and stops the session's sandboxes at the end."""
    with open(state_root() / f"{SESSION_NAME}.session.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another pytest session uses sandboxes named {SESSION_NAME}*; waiting for it "
                  f"(set IGW_SANDBOX_NAME to run side by side)", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        started = {}
        yield started
        if not KEEP:
            for sandbox in started.values():
                sandbox.down()


# full name of a factory sandbox that is up -> (the sandbox, the test module that last asked for it)
_factory_sandboxes_up = {}
_running = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _running["module"] = item.path
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield  # after the fixtures' own teardown
    if KEEP or (nextitem is not None and nextitem.path == item.path):
        return
    for full_name, (sandbox, module) in list(_factory_sandboxes_up.items()):
        if module == item.path:
            del _factory_sandboxes_up[full_name]
            sandbox.down()


@pytest.fixture(scope="session")
def sandbox_factory(_sandbox_session):
    def make(name, flavour="old", programming_delay=DEFAULT_PROGRAMMING_DELAY):
        """`programming_delay`: seconds or "LOW:HIGH", as for `up --programming-delay`."""
        full_name = f"{SESSION_NAME}-{name}"
        sandbox = _sandbox_session.get(full_name) or Sandbox(
            full_name, flavour=flavour, programming_delay=programming_delay)
        if sandbox.flavour != flavour:
            raise ValueError(f"sandbox {name} was made with flavour {sandbox.flavour}, not {flavour}")
        _sandbox_session[full_name] = sandbox
        _factory_sandboxes_up[full_name] = (sandbox, _running["module"])
        sandbox.up()
        return sandbox

    return make


@pytest.fixture(scope="session")
def sandbox(_sandbox_session):
    instance = _sandbox_session.setdefault(SESSION_NAME, Sandbox(SESSION_NAME, flavour="old"))
    instance.up()
    return instance


@pytest.fixture
def clean_sandbox(sandbox):
    sandbox.up()
    sandbox.reset()
    return sandbox


@pytest.fixture
def alpha_basic(clean_sandbox):
    clean_sandbox.seed("alpha-basic")
    return clean_sandbox
