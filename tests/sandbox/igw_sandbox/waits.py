"""Progress lines with elapsed time, and bounded waits that say what they waited for."""

import ssl
import sys
import time
import urllib.request


class SandboxError(RuntimeError):
    """A sandbox operation failed; the message names what and which log to read."""


class Progress:
    def __init__(self, name):
        self.name = name
        self.started = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.started

    def say(self, message):
        print(f"[sandbox {self.name} +{self.elapsed():5.1f}s] {message}", file=sys.stderr, flush=True)


def https_ok(url, ca_file):
    """Whether `url` answers 200 with a certificate the CA in `ca_file` vouches for."""
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(what, check, timeout, log=None, interval=0.25, alive=None):
    """Poll `check()` until it returns a true value, and return that value.

    `alive()` (optional) is asked between polls so that a process that died is
    reported at once instead of after the whole timeout; it returns None while
    all is well, or a description of what died.
    """
    deadline = time.monotonic() + timeout
    where = f"; see {log}" if log else ""
    last_error = None
    while True:
        try:
            result = check()
        except Exception as error:  # the thing polled is not up yet: keep its last complaint
            result, last_error = None, error
        if result:
            return result
        died = alive() if alive else None
        if died:
            raise SandboxError(f"{died} while waiting for {what}{where}")
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise SandboxError(f"timed out after {timeout:.0f}s waiting for {what}{detail}{where}")
        time.sleep(interval)
