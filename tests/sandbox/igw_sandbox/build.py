"""Build the sandbox binaries from Go modules into a version-keyed cache.

Each artefact lands in its own directory named after its version, outside the
repository, so later runs on the same machine reuse it and a version bump
builds afresh. Progress goes to stderr with the step and the time it took.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import upstream, versions
from .waits import SandboxError

GO_MODULE_DIR = Path(__file__).resolve().parent.parent / "go"
EPP_RELAY_DIR = Path(__file__).resolve().parent.parent / "epp-relay"
HEARTBEAT_SECONDS = 60


def cache_root():
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "igw-migration"
    return Path(os.environ.get("IGW_SANDBOX_CACHE", default))


def log(message):
    print(f"[sandbox build {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _version_ldflags(git_version):
    major, minor = git_version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={git_version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=2026-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def go_env(**extra):
    """The environment every go command of the sandbox runs in: static binaries, the local toolchain;
    `extra` overrides any of them (`go install` of a module outside ours needs GOFLAGS empty)."""
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", **extra}


def _go(args, cwd=None, env_extra=None):
    env = go_env(**(env_extra or {}))
    started = time.monotonic()
    log("running go " + " ".join(args[:2]) + " ... " + args[-1])
    process = subprocess.Popen(["go", *args], cwd=cwd, env=env)
    while True:
        try:
            returncode = process.wait(timeout=HEARTBEAT_SECONDS)
            break
        except subprocess.TimeoutExpired:
            log(f"still building {args[-1]} ({time.monotonic() - started:.0f}s so far)")
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, ["go", *args])
    log(f"done in {time.monotonic() - started:.0f}s")


def build_if_missing(target, build):
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two sandboxes coming up at once on a fresh machine must not build into the
    # same .partial: the second waits for the first and then finds the binary.
    with open(target.with_name(target.name + ".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process that is building {target.name}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        tmp = target.with_name(target.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
        log(f"building {target.name} into {target.parent} (first time only; it is cached)")
        build(tmp)
        tmp.rename(target)
    return target


def control_plane_dir():
    return cache_root() / f"k8s-{versions.KUBERNETES}-etcd-{versions.ETCD}"


def apiserver(flavour):
    git_version = versions.GKE_FLAVOURS[flavour]
    target = control_plane_dir() / f"kube-apiserver-{git_version}"

    def build(out):
        _go(["build", "-trimpath", "-ldflags", _version_ldflags(git_version), "-o", str(out),
             "k8s.io/kubernetes/cmd/kube-apiserver"], cwd=GO_MODULE_DIR)

    return build_if_missing(target, build)


def control_plane_binary(name):
    package = {
        "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
        "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        "etcd": "go.etcd.io/etcd/server/v3",
    }[name]
    target = control_plane_dir() / name
    flags = "-s -w" if name == "etcd" else _version_ldflags(versions.KUBERNETES)

    def build(out):
        _go(["build", "-trimpath", "-ldflags", flags, "-o", str(out), package], cwd=GO_MODULE_DIR)

    return build_if_missing(target, build)


def _go_install(module_path, version, binary, ldflags=""):
    target = cache_root() / f"{binary}-{version}" / binary

    def build(out):
        gobin = out.parent / (out.name + ".gobin")
        gobin.mkdir(parents=True, exist_ok=True)
        _go(["install", "-trimpath", "-ldflags", f"-s -w {ldflags}".strip(), f"{module_path}@{version}"],
            env_extra={"GOBIN": str(gobin), "GOFLAGS": ""})
        (gobin / binary).rename(out)
        gobin.rmdir()

    return build_if_missing(target, build)


def kwok():
    return _go_install("sigs.k8s.io/kwok/cmd/kwok", versions.KWOK, "kwok")


def helm():
    return _go_install("helm.sh/helm/v3/cmd/helm", versions.HELM, "helm",
                       f"-X helm.sh/helm/v3/internal/version.version={versions.HELM}")


def registry():
    """The CNCF distribution registry (the OCI registry behind registry.k8s.io's software)."""
    return _go_install("github.com/distribution/distribution/v3/cmd/registry", versions.DISTRIBUTION, "registry")


def epp_dir(release):
    """Where the endpoint picker of GIE `release` is cached; raises for a release the sandbox does not list."""
    if release not in versions.GIE_RELEASES:
        raise SandboxError(f"no endpoint picker for GIE release {release!r}: the sandbox builds those of "
                           f"{', '.join(versions.GIE_RELEASES)} (GIE_RELEASES in {Path(versions.__file__)})")
    return cache_root() / f"epp-{release}"


def epp_binary(release):
    """The endpoint picker (sigs.k8s.io/gateway-api-inference-extension/cmd/epp) of GIE `release`, built on first use.

    Not `go install ...@release`: it asks the Go proxy for the module's version list (to look
    for deprecations), which the proxy refuses here (403). `go mod download` of the exact
    version works, so the build runs in a writable copy of that module directory: with
    -mod=mod the go command may write go.mod/go.sum, and the module cache must stay as
    downloaded (root could write through its read-only bits).
    """
    target = epp_dir(release) / "epp"

    def build(out):
        source = upstream.module_dir(upstream.INFERENCE_EXTENSION, release)
        for stale in out.parent.glob(".source-*"):  # left by a build that was killed; we hold the lock
            shutil.rmtree(stale)
        with tempfile.TemporaryDirectory(prefix=".source-", dir=out.parent) as scratch:
            work = Path(scratch) / "gateway-api-inference-extension"
            log(f"copying {source} to a writable build directory")
            shutil.copytree(source, work)
            for path in (work, *work.rglob("*")):
                path.chmod(path.stat().st_mode | 0o200)
            # From v1.5.0 the module carries a go.work (with ./conformance), in which -mod=mod is refused; the EPP
            # is built from the module alone, as `go install module@version` would build it.
            _go(["build", "-ldflags", "-s -w", "-o", str(out), "./cmd/epp"], cwd=work, env_extra={"GOWORK": "off"})

    return build_if_missing(target, build)


def epp_relay_sources():
    """The files the epp-relay binary is built from (its tests excluded)."""
    return sorted(p for p in EPP_RELAY_DIR.iterdir()
                  if p.name in ("go.mod", "go.sum") or (p.suffix == ".go" and not p.name.endswith("_test.go")))


def epp_relay():
    """The gateway's ext_proc data plane (tests/sandbox/epp-relay), cached under a digest of its sources."""
    digest = hashlib.sha256()
    for path in epp_relay_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    target = cache_root() / f"epp-relay-{digest.hexdigest()[:12]}" / "epp-relay"

    def build(out):
        _go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."], cwd=EPP_RELAY_DIR)

    return build_if_missing(target, build)


def all_binaries(flavours=None):
    """Build (or find) every binary; return a name -> path mapping."""
    bins = {"kube-apiserver-" + f: apiserver(f) for f in (flavours or versions.GKE_FLAVOURS)}
    for name in ("kube-controller-manager", "kube-scheduler", "etcd"):
        bins[name] = control_plane_binary(name)
    bins["kwok"] = kwok()
    bins["helm"] = helm()
    bins["registry"] = registry()
    for release in versions.GIE_RELEASES:
        bins["epp-" + release] = epp_binary(release)
    bins["epp-relay"] = epp_relay()
    return bins


if __name__ == "__main__":
    for name, path in all_binaries().items():
        print(f"{name}\t{path}")
