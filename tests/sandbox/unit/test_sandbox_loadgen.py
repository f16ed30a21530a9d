import json
import threading
import time

import pytest

from igw_sandbox import loadgen, modelserver


def _record(index, start, status, latency=10.0, pool=None):
    return loadgen.Record(index, start, latency, status, pool, None, None)


def test_summary_counts_percentiles_and_pools():
    records = [_record(i, 100.0 + i, 200, latency=float(i + 1), pool="g/ns/a" if i % 4 else "g/ns/b")
               for i in range(100)]
    summary = loadgen.summarize(records, 100.0, 200.0, {})
    assert (summary["sent"], summary["ok"], summary["failed"]) == (100, 100, 0)
    assert summary["latency_ms"]["p50"] == 50.0
    assert summary["latency_ms"]["p95"] == 95.0
    assert summary["latency_ms"]["p99"] == 99.0
    assert summary["per_pool"] == {"g/ns/a": 75, "g/ns/b": 25}
    assert summary["status_codes"] == {"200": 100}


def test_failure_windows_are_contiguous_failures_in_send_order():
    statuses = [200, 503, 503, 200, 500, 0, 404, 200]
    records = [_record(i, 10.0 + i, s) for i, s in enumerate(statuses)]
    windows = loadgen.failure_windows(list(reversed(records)))
    assert [(w["start"], w["end"], w["count"]) for w in windows] == [(11.0, 12.0, 2), (14.0, 16.0, 3)]
    assert windows[1]["statuses"] == {"500": 1, "0": 1, "404": 1}
    assert loadgen.summarize(records, 0, 1, {})["failed"] == 5


def test_only_loopback_targets_are_accepted():
    loadgen.require_loopback("http://127.0.10.1:80/v1/completions")
    loadgen.require_loopback("http://localhost:8080")
    for url in ("http://10.0.0.1/", "http://192.168.1.1:80", "http://8.8.8.8"):
        with pytest.raises(ValueError):
            loadgen.require_loopback(url)


@pytest.fixture
def model_server():
    served = modelserver.parse_vllm_args(["--model", "m"])
    server = modelserver.ModelServer("default/pod-0", served, latency=0, ip="127.0.0.1", port=0)
    yield server
    server.stop()


def test_run_stops_at_max_requests_and_records_every_request(model_server, tmp_path):
    generator = loadgen.LoadGenerator(f"http://127.0.0.1:{model_server.port}", rate=200, duration=10,
                                      max_requests=40, model="m", summary_path=tmp_path / "run.json")
    started = time.monotonic()
    summary = generator.start().wait(15)
    assert time.monotonic() - started < 5
    assert (summary["sent"], summary["ok"]) == (40, 40)
    assert summary["per_pod"] == {"default/pod-0": 40}
    assert json.loads((tmp_path / "run.json").read_text())["sent"] == 40
    lines = (tmp_path / "run.requests.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(40))


def test_run_keeps_the_rate_and_stops_at_the_duration(model_server, tmp_path):
    generator = loadgen.LoadGenerator(f"http://127.0.0.1:{model_server.port}", rate=20, duration=1.0,
                                      max_requests=1000, model="unknown", summary_path=tmp_path / "s.json")
    summary = generator.start().wait(10)
    assert 18 <= summary["sent"] <= 21
    assert summary["status_codes"] == {"404": summary["sent"]}
    assert summary["failure_windows"][0]["count"] == summary["sent"]


def test_stop_file_and_stop_end_a_long_run_early(model_server, tmp_path):
    stop_file = tmp_path / "stop"
    generator = loadgen.LoadGenerator(f"http://127.0.0.1:{model_server.port}", rate=10, duration=60,
                                      max_requests=600, model="m", summary_path=tmp_path / "s.json",
                                      stop_file=stop_file)
    generator.start()
    threading.Timer(0.5, stop_file.touch).start()
    summary = generator.wait(5)
    assert summary is not None and summary["sent"] < 15
    other = loadgen.LoadGenerator(f"http://127.0.0.1:{model_server.port}", rate=10, duration=60,
                                  max_requests=600, model="m", summary_path=tmp_path / "t.json").start()
    time.sleep(0.3)
    assert other.stop()["sent"] < 10
