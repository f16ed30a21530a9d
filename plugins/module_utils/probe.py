# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The endpoint probe: the seed's ``curl .../v1/completions`` check, sent N times and measured.

Requests go out from a bounded pool of worker threads, each on its own
connection (as curl does), straight to the address given: no proxy, because the
probe checks the gateway, not the path to it. Every request and the whole probe
are bounded in time, so the probe always ends by itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import threading
import time
from collections import namedtuple

from http.client import HTTPConnection, HTTPException, HTTPSConnection
from urllib.parse import urlsplit

from ansible_collections.inference_gateway.migration.plugins.module_utils import gateway_address
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

DEFAULT_PATH = "/v1/completions"
MAX_REQUESTS = 100000
MAX_CONCURRENCY = 64
# Slack on top of the worst case (every request taking its whole timeout) before
# the probe stops waiting for what is still in flight.
DEADLINE_MARGIN_SECONDS = 5.0
MAX_BODY_BYTES = 1024 * 1024
FAILURE_SAMPLE_LIMIT = 5
BODY_EXCERPT_CHARS = 300
# by_header key for answers that lack the header, so they are counted rather than lost.
HEADER_ABSENT = "(absent)"
# Status of an attempt that got no HTTP response (connection refused, timeout, ...).
NO_RESPONSE = 0


class Answer(namedtuple("Answer", ["status", "latency_ms", "header_value", "error", "body"])):
    """One request as the probe saw it: status NO_RESPONSE means no HTTP response at all."""

    __slots__ = ()

    @property
    def ok(self):
        return 200 <= self.status < 300


class Target(namedtuple("Target", ["scheme", "host", "port", "path"])):
    """Where requests go, parsed once from the URL."""

    __slots__ = ()

    @classmethod
    def parse(cls, url):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MigrationError(
                "url %r is not an http:// or https:// URL with a host: give a full URL such as "
                "http://203.0.113.10:80/v1/completions" % url
            )
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(parts.scheme, parts.hostname, parts.port, path)


def completion_request(model, prompt, max_tokens, temperature):
    """The JSON body the seed's curl sends."""
    return json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature})


def gateway_url(gateway, listener=None, path=DEFAULT_PATH):
    """``http://<status.addresses[0].value>:<listener port><path>``, the address the seed curls."""
    metadata = gateway.get("metadata", {})
    name = "%s/%s" % (metadata.get("namespace"), metadata.get("name"))
    if not path.startswith("/"):
        raise MigrationError("path %r does not start with /: give the request path, such as %s" % (path, DEFAULT_PATH))
    if gateway_address.address(gateway) is None:
        raise MigrationError(
            "Gateway %s has no address in status.addresses yet: wait until `kubectl get gateway -o wide` "
            "shows it PROGRAMMED with an ADDRESS, or give the probe a url" % name,
            gateway=name,
        )
    chosen = gateway_address.listener(gateway, listener)
    if chosen is None:
        raise MigrationError(
            "Gateway %s has no listener %s (its listeners: %s): name one of them, or give the probe a url"
            % (name, listener if listener is not None else "at all",
               [c.get("name") for c in gateway_address.listeners(gateway)]),
            gateway=name,
        )
    if chosen.get("protocol", "HTTP") != "HTTP":
        raise MigrationError(
            "listener %s of Gateway %s speaks %s; the probe sends plain HTTP as the seed's curl does: "
            "name an HTTP listener, or give the probe a url" % (chosen.get("name"), name, chosen.get("protocol")),
            gateway=name,
        )
    return gateway_address.url(gateway, listener, path=path)


def validate(requests, concurrency, timeout, min_success_ratio, max_p95_ms):
    """Refuse settings that would make the probe unbounded or its verdict meaningless."""
    problems = []
    if not 1 <= requests <= MAX_REQUESTS:
        problems.append("requests must be between 1 and %d (got %s)" % (MAX_REQUESTS, requests))
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        problems.append("concurrency must be between 1 and %d (got %s)" % (MAX_CONCURRENCY, concurrency))
    if not timeout > 0:
        problems.append("timeout must be a positive number of seconds (got %s)" % timeout)
    if not 0 <= min_success_ratio <= 1:
        problems.append("min_success_ratio must be between 0 and 1 (got %s)" % min_success_ratio)
    if max_p95_ms is not None and not max_p95_ms > 0:
        problems.append("max_p95_ms must be positive (got %s)" % max_p95_ms)
    if problems:
        raise MigrationError("endpoint probe settings refused: %s" % "; ".join(problems), problems=problems)


def deadline_seconds(requests, concurrency, timeout):
    """How long the whole probe may take: every round of requests at its full timeout, plus a margin."""
    return math.ceil(requests / min(concurrency, requests)) * timeout + DEADLINE_MARGIN_SECONDS


def send_one(target, body, headers, timeout, group_by_header=None):
    """POST once; never raises: a failure to get an answer is an Answer with status NO_RESPONSE."""
    started = time.monotonic()
    due = started + timeout
    connection_class = HTTPSConnection if target.scheme == "https" else HTTPConnection
    connection = connection_class(target.host, target.port, timeout=timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = _read_until(connection, response, due)
        header_value = response.getheader(group_by_header, HEADER_ABSENT) if group_by_header else None
        return Answer(response.status, _elapsed_ms(started), header_value, None,
                      payload[:BODY_EXCERPT_CHARS].decode("utf-8", "replace"))
    except (OSError, HTTPException) as e:
        return Answer(NO_RESPONSE, _elapsed_ms(started), None, _describe(e, timeout), "")
    finally:
        connection.close()


def _read_until(connection, response, due):
    """Read the body (up to MAX_BODY_BYTES) without going past the request's own deadline."""
    chunks, size = [], 0
    while size < MAX_BODY_BYTES:
        remaining = due - time.monotonic()
        if remaining <= 0:
            raise OSError("timed out reading the response body")
        if connection.sock is not None:
            connection.sock.settimeout(remaining)
        chunk = response.read(min(65536, MAX_BODY_BYTES - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _elapsed_ms(started):
    return (time.monotonic() - started) * 1000.0


def _describe(error, timeout):
    text = str(error) or type(error).__name__
    if "timed out" in text:
        return "no complete answer within the %ss timeout (%s)" % (timeout, text)
    return "%s: %s" % (type(error).__name__, text)


def send_all(send, requests, concurrency, deadline):
    """Call ``send()`` ``requests`` times from at most ``concurrency`` threads; stop waiting at ``deadline`` seconds.

    Returns one entry per planned request: its Answer, or None when it had not
    finished (or not started) by the deadline. Workers are daemon threads, so one
    stuck on a dead socket cannot keep the process alive after the probe returns.
    """
    answers = [None] * requests
    started = [False] * requests
    pending = iter(range(requests))
    lock = threading.Lock()
    stop = threading.Event()

    def work():
        while not stop.is_set():
            with lock:
                index = next(pending, None)
                if index is None:
                    return
                started[index] = True
            answers[index] = send()

    workers = [threading.Thread(target=work, name="endpoint-probe-%d" % n) for n in range(min(concurrency, requests))]
    ends_at = time.monotonic() + deadline
    for worker in workers:
        worker.daemon = True
        worker.start()
    for worker in workers:
        worker.join(max(0.0, ends_at - time.monotonic()))
    stop.set()
    with lock:
        return list(answers), list(started)


def _percentile(sorted_values, fraction):
    """Nearest-rank percentile, the value a reader can find in the raw data."""
    if not sorted_values:
        return None
    rank = max(1, int(math.ceil(fraction * len(sorted_values))))
    return round(sorted_values[rank - 1], 1)


def summarize(answers, started, deadline=None):
    """Aggregate what the probe saw; unanswered entries (None) count as failures.

    Latency percentiles cover the requests that got an HTTP response, whatever its
    status; requests without one are counted under status code "0".
    """
    planned = len(answers)
    sent = sum(1 for flag in started if flag)
    unfinished = "no answer before the probe's deadline of %ss" % deadline
    seen = [(index, answer or Answer(NO_RESPONSE, None, None, unfinished, ""))
            for index, (answer, flag) in enumerate(zip(answers, started)) if flag]
    ok = sum(1 for _index, answer in seen if answer.ok)
    latencies = sorted(answer.latency_ms for _index, answer in seen if answer.status != NO_RESPONSE)
    status_codes, by_header = {}, {}
    for _index, answer in seen:
        code = str(answer.status)
        status_codes[code] = status_codes.get(code, 0) + 1
        if answer.header_value is not None:
            by_header[answer.header_value] = by_header.get(answer.header_value, 0) + 1
    failure_samples = [
        dict(request=index, status=answer.status, error=answer.error, body=answer.body)
        for index, answer in seen if not answer.ok
    ][:FAILURE_SAMPLE_LIMIT]
    return {
        "requests": planned,
        "sent": sent,
        "ok": ok,
        # Not "failed": Ansible reads that key of a module result as the task's own failure.
        "failed_requests": sent - ok,
        "success_ratio": round(ok / planned, 4) if planned else 0.0,
        "latency_ms": {
            "p50": _percentile(latencies, 0.50),
            "p95": _percentile(latencies, 0.95),
            "p99": _percentile(latencies, 0.99),
            "max": round(latencies[-1], 1) if latencies else None,
        },
        "status_codes": status_codes,
        "by_header": by_header,
        "failure_samples": failure_samples,
    }


def evaluate(summary, min_success_ratio, max_p95_ms=None):
    """The threshold failures of a summary, each as a sentence with the measured value; empty when it passes."""
    reasons = []
    if summary["sent"] < summary["requests"]:
        reasons.append("only %d of %d requests were sent before the probe's deadline"
                       % (summary["sent"], summary["requests"]))
    if summary["success_ratio"] < min_success_ratio:
        reasons.append("success ratio %s (%d of %d requests answered 2xx) is below the minimum %s"
                       % (summary["success_ratio"], summary["ok"], summary["requests"], min_success_ratio))
    if max_p95_ms is not None:
        p95 = summary["latency_ms"]["p95"]
        if p95 is None:
            reasons.append("p95 latency cannot be measured: no request got an HTTP response (maximum %s ms)"
                           % max_p95_ms)
        elif p95 > max_p95_ms:
            reasons.append("p95 latency %s ms is above the maximum %s ms" % (p95, max_p95_ms))
    return reasons


def describe(result, group_by_header=None):
    """One line a person can read: what was sent where and what came back."""
    latency = result["latency_ms"]
    line = "%d/%d requests to %s answered 2xx (success ratio %s); latency ms p50 %s p95 %s p99 %s max %s; status codes %s" % (
        result["ok"], result["requests"], result["url"], result["success_ratio"],
        latency["p50"], latency["p95"], latency["p99"], latency["max"], _counts(result["status_codes"]),
    )
    if group_by_header:
        line += "; by %s %s" % (group_by_header, _counts(result["by_header"]))
    if result["reasons"]:
        line += "; FAILED: %s" % "; ".join(result["reasons"])
    if result["failure_samples"]:
        first = result["failure_samples"][0]
        line += "; first failure: status %s %s" % (first["status"], first["error"] or first["body"][:120])
    return line


def _counts(counts):
    return ", ".join("%s: %d" % (key, counts[key]) for key in sorted(counts)) or "none"


def probe(url, model, prompt="Hi", max_tokens=10, temperature=0, headers=None, requests=20, concurrency=4,
          timeout=10.0, min_success_ratio=1.0, max_p95_ms=None, group_by_header=None, send=send_one):
    """Send the completion requests, measure, and judge against the thresholds."""
    validate(requests, concurrency, timeout, min_success_ratio, max_p95_ms)
    target = Target.parse(url)
    body = completion_request(model, prompt, max_tokens, temperature)
    request_headers = {"Content-Type": "application/json", "Connection": "close"}
    request_headers.update(headers or {})
    deadline = deadline_seconds(requests, concurrency, timeout)
    started_at = time.monotonic()
    answers, started = send_all(lambda: send(target, body, request_headers, timeout, group_by_header),
                                requests, concurrency, deadline)
    result = summarize(answers, started, deadline)
    result["url"] = url
    result["elapsed_seconds"] = round(time.monotonic() - started_at, 3)
    result["reasons"] = evaluate(result, min_success_ratio, max_p95_ms)
    result["passed"] = not result["reasons"]
    result["summary"] = describe(result, group_by_header)
    return result


def _added(counts):
    total = {}
    for count in counts:
        for key, value in count.items():
            total[key] = total.get(key, 0) + value
    return total


def combine(named_results):
    """One verdict over the probes of several targets, given as (name, result) pairs.

    Counts add up, each latency figure is the worst target's, and the gate passes only when
    every target passed. The summary names each target that failed, with what it measured,
    before those that passed; ``targets`` keeps every target's own result.
    """
    results = [dict(result, name=name) for name, result in named_results]
    failed = [result for result in results if not result["passed"]]
    requests, ok = sum(r["requests"] for r in results), sum(r["ok"] for r in results)

    def worst(key):
        values = [r["latency_ms"][key] for r in results if r["latency_ms"][key] is not None]
        return max(values) if values else None

    return {
        "url": ", ".join(dict.fromkeys(r["url"] for r in results)),
        "requests": requests,
        "sent": sum(r["sent"] for r in results),
        "ok": ok,
        "failed_requests": sum(r["failed_requests"] for r in results),
        "success_ratio": round(ok / requests, 4) if requests else 0.0,
        "latency_ms": dict((key, worst(key)) for key in ("p50", "p95", "p99", "max")),
        "status_codes": _added(r["status_codes"] for r in results),
        "by_header": _added(r["by_header"] for r in results),
        "failure_samples": [dict(sample, target=r["name"]) for r in failed for sample in r["failure_samples"]]
        [:FAILURE_SAMPLE_LIMIT],
        "elapsed_seconds": round(sum(r["elapsed_seconds"] for r in results), 3),
        "reasons": ["%s: %s" % (r["name"], reason) for r in failed for reason in r["reasons"]],
        "passed": not failed,
        "summary": "; ".join(("FAILED %s: %s" if not r["passed"] else "%s: %s") % (r["name"], r["summary"])
                             for r in failed + [r for r in results if r["passed"]]),
        "targets": results,
    }
