"""Scenarios: a directory under tests/sandbox/scenarios/ with a scenario.yaml of steps.

Each step is a mapping with exactly one of these keys:

  apply: [file, ...]             manifests in the scenario directory (kubectl apply)
  apply_upstream:                manifests read from a Go module
    module: MODULE@VERSION       VERSION may be {NAME} for versions.NAME, e.g. {GIE_ALPHA}
    paths: [relative path, ...]
    only: [{kind: K, name: N}]   optional: keep just these documents
    json_patch: [op, ...]        optional: RFC 6902 operations applied to every kept document
    server_side: true            optional: server-side apply (large CRDs)
  helm_install:
    release: NAME
    namespace: NS
    chart: {module: MODULE@VERSION, path: relative path}
    set: {key: value, ...}
  wait:
    namespace: NS
    deployments: [name, ...]     until every replica is updated and available, and the endpoint
                                 picker of each of its pods listens for ext_proc
    gateways: [name, ...]        until Programmed with an address
    routes: [name, ...]          until every parent reports Accepted and ResolvedRefs

Every step also accepts `namespace` (default: default).
"""

import functools
import string
from pathlib import Path
from typing import NamedTuple

import jsonpatch
import yaml

from . import netns, processes, upstream, versions
from .gateway import epps
from .kube import load_documents
from .waits import SandboxError, wait_until

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_NAMESPACE = "default"
WAIT_TIMEOUT = 120


class Context(NamedTuple):
    directory: Path
    logs: str
    state_dir: Path


def available():
    return sorted(p.parent.name for p in SCENARIOS_DIR.glob("*/scenario.yaml"))


def load(name):
    path = SCENARIOS_DIR / name / "scenario.yaml"
    if not path.exists():
        raise SandboxError(f"no scenario {name!r} (looked for {path}); known: {', '.join(available())}")
    return yaml.safe_load(path.read_text()) or {}


def _module(reference):
    """`MODULE@{NAME}` -> `MODULE@<versions.NAME>`; a literal version passes through."""
    try:
        return string.Formatter().vformat(reference, (), vars(versions))
    except KeyError as missing:
        raise SandboxError(f"{reference!r} names {missing}, which versions.py does not define") from None


def _apply(kube, context, files, namespace):
    kube.apply([doc for f in files for doc in load_documents(context.directory / f)], namespace=namespace)


def _apply_upstream(kube, _context, namespace, module, paths, only=None, json_patch=None,
                    server_side=False):
    reference = _module(module)
    documents = [doc for p in paths for doc in load_documents(upstream.module_file(reference, p))]
    if only:
        wanted = {(o["kind"], o["name"]) for o in only}
        documents = [d for d in documents if (d["kind"], d["metadata"]["name"]) in wanted]
        missing = wanted - {(d["kind"], d["metadata"]["name"]) for d in documents}
        if missing:
            raise SandboxError(f"{reference} {paths} has no {sorted(missing)}")
    if json_patch:
        documents = [jsonpatch.apply_patch(d, json_patch) for d in documents]
    kube.apply(documents, namespace=namespace, server_side=server_side)


def _helm_install(kube, _context, namespace, release, chart, set=None):
    chart_dir = upstream.module_file(_module(chart["module"]), chart["path"])
    values = [arg for key, value in (set or {}).items() for arg in ("--set", f"{key}={value}")]
    kube.helm("install", release, str(chart_dir), "--namespace", namespace, "--create-namespace", *values)


def _deployment_done(kube, namespace, name):
    deployment = kube.get_json("deployment", name, "-n", namespace)
    wanted, status = deployment["spec"].get("replicas", 1), deployment.get("status", {})
    return (status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == wanted and status.get("availableReplicas", 0) == wanted)


def epps_listening(kube, namespace, name, state_dir):
    """The kubelet marks an EPP pod Ready on its health probe; kwok at once. So the seed also waits until
    the endpoint picker that the sandbox runs for each pod serves, as a real pod would before it is Ready."""
    selector = kube.get_json("deployment", name, "-n", namespace)["spec"]["selector"].get("matchLabels", {})
    pods = kube.get_json("pods", "-n", namespace, "-l", ",".join(f"{k}={v}" for k, v in selector.items()))["items"]
    sockets = processes.tcp_sockets(processes.sandbox_pids(state_dir))
    return not epps.not_listening(pods, sockets, netns.prefix_of(state_dir))


def _condition_true(status, kind):
    return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])


def _gateway_serving(kube, namespace, name):
    status = kube.get_json("gateways.gateway.networking.k8s.io", name, "-n", namespace).get("status") or {}
    return _condition_true(status, "Programmed") and bool(status.get("addresses"))


def _route_resolved(kube, namespace, name):
    parents = (kube.get_json("httproutes.gateway.networking.k8s.io", name, "-n", namespace).get("status") or {}).get(
        "parents") or []
    return bool(parents) and all(_condition_true(p, "Accepted") and _condition_true(p, "ResolvedRefs") for p in parents)


def _wait(kube, context, namespace, deployments=(), gateways=(), routes=()):
    """A scenario is seeded once what it waits for serves: tests may send requests straight away."""
    listening = functools.partial(epps_listening, state_dir=context.state_dir)
    waits = ([(f"deployment {namespace}/{n} to be available", _deployment_done, n) for n in deployments]
             + [(f"the endpoint pickers of deployment {namespace}/{n} to listen for ext_proc", listening, n)
                for n in deployments]
             + [(f"gateway {namespace}/{n} to be programmed with an address", _gateway_serving, n) for n in gateways]
             + [(f"httproute {namespace}/{n} to be accepted with resolved refs", _route_resolved, n) for n in routes])
    for what, done, name in waits:
        wait_until(what, functools.partial(done, kube, namespace, name), WAIT_TIMEOUT, log=context.logs)


STEPS = {"apply": _apply, "apply_upstream": _apply_upstream, "helm_install": _helm_install, "wait": _wait}


def run(kube, name, progress, logs, state_dir):
    """Run scenario `name` on the sandbox of `state_dir`; `logs` names the logs to read when a wait times out."""
    context = Context(SCENARIOS_DIR / name, logs, Path(state_dir))
    for number, step in enumerate(load(name).get("steps") or [], start=1):
        if len(step) != 1 or next(iter(step)) not in STEPS:
            raise SandboxError(f"scenario {name} step {number}: expected one of {sorted(STEPS)}, got {step}")
        kind, arguments = next(iter(step.items()))
        arguments = step_arguments(kind, arguments)
        progress.say(f"scenario {name} step {number}: {kind} {_describe(arguments)}")
        STEPS[kind](kube, context, **arguments)


def step_arguments(kind, arguments):
    """A step's keyword arguments, its namespace made explicit; `apply` may be written as a bare list of files."""
    if kind == "apply" and isinstance(arguments, list):
        arguments = {"files": arguments}
    return dict({"namespace": DEFAULT_NAMESPACE}, **arguments)


def _describe(arguments):
    shown = {k: v for k, v in arguments.items() if k not in ("json_patch", "set")}
    return " ".join(f"{k}={v}" for k, v in shown.items())
