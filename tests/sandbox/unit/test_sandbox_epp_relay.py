"""The epp-relay (the gateway's ext_proc data plane, in Go): its Go tests, run against fake endpoint pickers
that answer as each GIE release does, and the cache key of its binary."""

import json
import subprocess

from igw_sandbox import build

# Every Test function in tests/sandbox/epp-relay/relay_test.go; a test that stops running is a failure here.
EXPECTED_GO_TESTS = 13


def test_the_epp_relay_passes_its_go_tests():
    result = subprocess.run(["go", "test", "-json", "-count=1", "."], cwd=build.EPP_RELAY_DIR, env=build.go_env(),
                            capture_output=True, text=True, timeout=900, check=False)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    outcomes = {event["Test"]: event["Action"] for event in events
                if event.get("Test") and event.get("Action") in ("pass", "fail", "skip")}
    output = "".join(event.get("Output", "") for event in events) + result.stderr
    assert result.returncode == 0, output
    assert sorted(outcomes.values()) == ["pass"] * EXPECTED_GO_TESTS, output


def test_the_relay_binary_is_cached_under_a_digest_of_its_sources(tmp_path, monkeypatch):
    source = tmp_path / "epp-relay"
    source.mkdir()
    for name in ("go.mod", "go.sum", "main.go", "relay_test.go"):
        (source / name).write_text(name)
    monkeypatch.setattr(build, "EPP_RELAY_DIR", source)
    monkeypatch.setenv("IGW_SANDBOX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(build, "build_if_missing", lambda target, make: target)
    first = build.epp_relay()
    (source / "relay_test.go").write_text("a test changed")
    assert build.epp_relay() == first, "tests are not part of the binary"
    (source / "main.go").write_text("the relay changed")
    assert build.epp_relay() != first
    assert [p.name for p in build.epp_relay_sources()] == ["go.mod", "go.sum", "main.go"]
