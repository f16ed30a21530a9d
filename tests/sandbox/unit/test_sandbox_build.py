"""The endpoint-picker build: release lookup, cache layout and the build steps, without running go."""

import stat

import pytest

from igw_sandbox import build, upstream, versions
from igw_sandbox.waits import SandboxError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IGW_SANDBOX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_pickers_built_are_those_of_the_releases_on_the_mirrors():
    assert {"v0.3.0", "v0.5.1", "v1.0.0"} <= set(versions.GIE_RELEASES)


@pytest.mark.parametrize("release", versions.GIE_RELEASES)
def test_each_release_has_its_own_cache_directory(cache, release):
    assert build.epp_dir(release) == cache / f"epp-{release}"


def test_an_unlisted_release_names_itself_and_the_table(cache, monkeypatch):
    monkeypatch.setattr(build, "_go", lambda *args, **kwargs: pytest.fail("must not build"))
    with pytest.raises(SandboxError) as error:
        build.epp_binary("v0.4.0")
    assert "'v0.4.0'" in str(error.value)
    assert "GIE_RELEASES" in str(error.value) and "versions.py" in str(error.value)
    assert not cache.exists()


def test_a_cached_picker_is_returned_without_building(cache, monkeypatch):
    monkeypatch.setattr(build, "_go", lambda *args, **kwargs: pytest.fail("must not build"))
    binary = cache / "epp-v1.0.0" / "epp"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF")
    assert build.epp_binary("v1.0.0") == binary


def test_a_missing_picker_is_built_in_a_writable_copy_of_the_module(cache, tmp_path, monkeypatch):
    module = tmp_path / "modcache" / "gateway-api-inference-extension@v0.5.1"
    (module / "cmd" / "epp").mkdir(parents=True)
    (module / "go.mod").write_text("module sigs.k8s.io/gateway-api-inference-extension\n")
    (module / "cmd" / "epp" / "main.go").write_text("package main\n")
    for path in (module / "cmd" / "epp" / "main.go", module / "go.mod", module / "cmd" / "epp", module / "cmd"):
        path.chmod(path.stat().st_mode & ~0o222)  # as the module cache leaves them
    monkeypatch.setattr(upstream, "module_dir",
                        lambda name, version: module if (name, version) == (upstream.INFERENCE_EXTENSION, "v0.5.1")
                        else pytest.fail(f"unexpected module {name}@{version}"))
    calls = []

    def fake_go(args, cwd=None, env_extra=None):
        calls.append((args, cwd, env_extra))
        assert (cwd / "cmd/epp/main.go").read_text() == "package main\n"
        assert (cwd / "go.mod").stat().st_mode & stat.S_IWUSR  # -mod=mod may update go.mod and go.sum
        out = args[args.index("-o") + 1]
        with open(out, "wb") as binary:
            binary.write(b"\x7fELF")

    monkeypatch.setattr(build, "_go", fake_go)
    binary = build.epp_binary("v0.5.1")
    assert binary == cache / "epp-v0.5.1" / "epp" and binary.read_bytes() == b"\x7fELF"
    [(args, cwd, env_extra)] = calls
    assert args[0] == "build" and args[-1] == "./cmd/epp"
    # v1.5.0's module holds a go.work, in which -mod=mod is refused: the module is built alone.
    assert env_extra == {"GOWORK": "off"}
    assert not cwd.is_relative_to(module) and not cwd.exists()  # the copy is gone once the binary is in place
    assert sorted(p.name for p in binary.parent.iterdir()) == ["epp", "epp.lock"]
    build.epp_binary("v0.5.1")
    assert len(calls) == 1


def test_a_go_install_outside_our_module_runs_with_goflags_overridden(cache, monkeypatch):
    commands = []

    class FinishedGo:
        def __init__(self, args, cwd=None, env=None):
            commands.append((args, env))
            gobin = env["GOBIN"]
            with open(f"{gobin}/kwok", "wb") as binary:
                binary.write(b"\x7fELF")

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(build.subprocess, "Popen", FinishedGo)
    assert build.kwok().read_bytes() == b"\x7fELF"
    [(args, env)] = commands
    assert args[:2] == ["go", "install"] and env["GOFLAGS"] == "" and env["CGO_ENABLED"] == "0"
