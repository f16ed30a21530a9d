"""The verify role's Prometheus check against a stand-in Prometheus query API on 127.0.0.1."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from support import run_playbook

PLAYBOOK = Path(__file__).with_name("prometheus_gate.yml")
ANSWERS = {
    "healthy_ratio": (200, {"resultType": "vector", "result": [{"metric": {"pool": "a"}, "value": [1.7e9, "0.995"]},
                                                               {"metric": {"pool": "b"}, "value": [1.7e9, "0.999"]}]}),
    "degraded_ratio": (200, {"resultType": "vector", "result": [{"metric": {"pool": "a"}, "value": [1.7e9, "0.995"]},
                                                                {"metric": {"pool": "b"}, "value": [1.7e9, "0.5"]}]}),
    "no_series": (200, {"resultType": "vector", "result": []}),
    "queue_depth": (200, {"resultType": "scalar", "result": [1.7e9, "3"]}),
}


class PrometheusAPI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), QueryHandler)
        self.queries = []


class QueryHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        query = form["query"][0]
        self.server.queries.append((self.path, query))
        status, data = ANSWERS.get(query, (400, None))
        body = {"status": "success", "data": data} if data else {
            "status": "error", "errorType": "bad_data", "error": "1:1: parse error: unexpected identifier"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


CASES = {
    "healthy": ("healthy_ratio", 0.99, None),
    "degraded": ("degraded_ratio", 0.99, None),
    "scalar within": ("queue_depth", None, 5),
    "scalar above": ("queue_depth", None, 2),
    "no series": ("no_series", 0.99, None),
    "rejected": ("not promql(", 0, None),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case through the role once (one ansible-playbook run keeps this fast)."""
    server = PrometheusAPI()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    tmp_path = tmp_path_factory.mktemp("prometheus")
    output = tmp_path / "cases.json"
    extra = {"verify_prometheus_url": "http://127.0.0.1:%d/" % server.server_address[1],
             "prometheus_cases": [dict(query=q, min=lo, max=hi) for q, lo, hi in CASES.values()],
             "prometheus_test_output": str(output)}
    try:
        run_playbook(PLAYBOOK, "-e", json.dumps(extra), env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert [query for _path, query in server.queries] == [q for q, _lo, _hi in CASES.values()]
    assert set(path for path, _query in server.queries) == {"/api/v1/query"}
    return dict(zip(CASES, json.loads(output.read_text())))


def test_every_series_within_bounds_passes(results):
    assert results["healthy"] == {"check": {"check": "Prometheus query healthy_ratio at least 0.99", "passed": True,
                                            "details": "the query returned 0.995, 0.999"}, "error": None}


def test_one_series_below_the_minimum_fails_with_the_values(results):
    check, error = results["degraded"]["check"], results["degraded"]["error"]

    assert check["passed"] is False and check["details"] == "the query returned 0.995, 0.5"
    assert error.startswith("Gate 'prometheus-only' failed: Prometheus query degraded_ratio at least 0.99. "
                            "Measured: the query returned 0.995, 0.5. What to do:")


def test_a_scalar_result_is_judged_against_the_maximum(results):
    assert results["scalar within"]["check"]["passed"] is True
    assert results["scalar above"]["check"] == {"check": "Prometheus query queue_depth at most 2", "passed": False,
                                                "details": "the query returned 3.0"}


def test_a_query_matching_no_series_fails(results):
    check = results["no series"]["check"]

    assert check["passed"] is False
    assert check["details"].startswith("the query returned no value (Prometheus answered status 200")


def test_a_query_prometheus_rejects_fails_with_its_error(results):
    check = results["rejected"]["check"]

    assert check["passed"] is False
    assert "status 400: 1:1: parse error: unexpected identifier" in check["details"]
