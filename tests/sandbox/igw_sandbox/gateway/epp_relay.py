"""The gateway's ext_proc data plane: the epp-relay process (Go, tests/sandbox/epp-relay) and its contract.

For a request routed to an InferencePool the gateway sends the request, as it would go upstream, to the relay's
Unix socket with the EPP to ask in RELAY_EPP_HEADER. The relay holds the ext_proc stream with that EPP (request
headers and body, then response headers and body, over TLS as GKE's load balancer), forwards to the endpoint
the EPP names with the EPP's mutations, and answers with what the client gets. RELAY_OUTCOME_HEADER says what
happened; the gateway keeps routing and every policy (failureMode, the answer to a failure, stats).
"""

import logging
import subprocess
import time
from pathlib import Path

log = logging.getLogger("igw_sandbox.gateway.epp_relay")

RELAY_EPP_HEADER = "x-igw-relay-epp"
RELAY_EPP_POD_HEADER = "x-igw-relay-epp-pod"  # the uid of the EPP's pod: another pod at the address is redialled
RELAY_OUTCOME_HEADER = "x-igw-relay-outcome"
RELAY_ENDPOINT_HEADER = "x-igw-relay-endpoint"
RELAY_WARNING_HEADER = "x-igw-relay-warning"
RELAY_HEADERS = {RELAY_EPP_HEADER, RELAY_EPP_POD_HEADER, RELAY_OUTCOME_HEADER, RELAY_ENDPOINT_HEADER,
                 RELAY_WARNING_HEADER}
# RELAY_OUTCOME_HEADER values: the EPP named an endpoint and it answered; the EPP answered itself; the EPP
# could not be asked, failed or named no endpoint (the body says why); the endpoint it named did not answer.
FORWARDED, IMMEDIATE, EPP_FAILED, UPSTREAM_FAILED = "forwarded", "immediate", "epp-failed", "upstream-failed"
# How long the relay waits for each answer of an EPP, as Envoy's ext_proc message_timeout.
MESSAGE_TIMEOUT_SECONDS = 10
START_TIMEOUT_SECONDS = 10


class EppRelay:
    """The relay process, started in the calling thread's network namespace (the pod network); it exits with
    the gateway, which holds its standard input."""

    def __init__(self, binary, socket_path, log_path):
        self.socket_path = Path(socket_path)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                [str(binary), "-socket", str(self.socket_path), "-exit-with-stdin",
                 "-message-timeout", f"{MESSAGE_TIMEOUT_SECONDS}s"],
                stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.socket_path.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"epp-relay did not start (exit code {self._process.poll()}); see {log_path}")
            time.sleep(0.01)
        log.info("epp-relay %s serving on %s", binary, self.socket_path)

    def close(self):
        self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
