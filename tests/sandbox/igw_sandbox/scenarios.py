"""Scenarios: a directory under tests/sandbox/scenarios/ with a scenario.yaml of steps.

Each step is a mapping with exactly one of these keys:

  apply: [file, ...]             manifests in the scenario directory (kubectl apply); or
         {files: [...], documents: [manifest, ...]} for manifests written inline
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

`pools-N` (e.g. pools-20) is generated rather than read: alpha-basic's preview stack N times over
(see pools_scenario), for measuring how the migration scales with the number of pools.
"""

import copy
import functools
import re
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


GENERATED_POOLS = re.compile(r"pools-([1-9][0-9]*)$")
# One model server per generated pool, where alpha-basic has three: each endpoint picker scrapes every pod of
# its pool every 50 ms, and during a zero-downtime migration of N pools 2N pickers share the sandbox's cores.
GENERATED_POOL_REPLICAS = 1
GENERATED_GATEWAY = "inference-gateway"


def available():
    """The scenarios written as files; pools-N is generated for any N."""
    return sorted(p.parent.name for p in SCENARIOS_DIR.glob("*/scenario.yaml"))


def pool_names(count):
    """The preview pools of scenario pools-`count`, as `(pool, hostname of its route)`."""
    width = len(str(count))
    return [(f"pool-{i:0{width}d}-preview", f"pool-{i:0{width}d}.example.com") for i in range(1, count + 1)]


def _generated_pool(template, pool, hostname):
    """The model servers, InferenceModel and HTTPRoute of one generated pool (its helm release is a step)."""
    app = pool.removesuffix("-preview")
    servers = copy.deepcopy(template)
    servers["metadata"]["name"] = app
    servers["spec"]["replicas"] = GENERATED_POOL_REPLICAS
    servers["spec"]["selector"]["matchLabels"] = {"app": app}
    servers["spec"]["template"]["metadata"]["labels"] = {"app": app}
    # Without alpha-basic's GPU request: the sandbox's kwok nodes have GPUs for a few dozen pods, not for any N.
    for container in servers["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)
    model = {"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceModel",
             "metadata": {"name": f"{app}-base-model"},
             "spec": {"modelName": "meta-llama/Llama-3.1-8B-Instruct", "criticality": "Critical",
                      "poolRef": {"name": pool}}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": f"{app}-route"},
             "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                      "name": GENERATED_GATEWAY}],
                      "hostnames": [hostname],
                      "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                 "backendRefs": [{"group": "inference.networking.x-k8s.io", "kind": "InferencePool",
                                                  "name": pool}]}]}}
    return app, servers, model, route


def pools_scenario(count):
    """alpha-basic's preview stack `count` times in namespace default: per pool, model servers of its own, a
    release of the GIE v0.3.0 chart (pool and endpoint picker), one InferenceModel, and an HTTPRoute of its own
    (hostname pool-<i>.example.com) on alpha-basic's Gateway."""
    (template,) = load_documents(SCENARIOS_DIR / "alpha-basic" / "model-server.yaml")
    stacks = [_generated_pool(template, pool, hostname) for pool, hostname in pool_names(count)]
    alpha_chart = {"module": "sigs.k8s.io/gateway-api-inference-extension@{GIE_ALPHA}",
                   "path": "config/charts/inferencepool"}
    return {
        "description": f"alpha-basic's preview stack {count} times, each pool behind a route of its own.",
        "steps": [
            {"apply_upstream": {"module": alpha_chart["module"], "paths": [
                "config/crd/bases/inference.networking.x-k8s.io_inferencepools.yaml",
                "config/crd/bases/inference.networking.x-k8s.io_inferencemodels.yaml"]}},
            {"apply": {"documents": [servers for _app, servers, _model, _route in stacks]}},
            *({"helm_install": {"release": f"{app}-preview", "namespace": DEFAULT_NAMESPACE, "chart": alpha_chart,
                                "set": {"inferencePool.modelServers.matchLabels.app": app, "provider.name": "gke"}}}
              for app, _servers, _model, _route in stacks),
            {"apply": {"documents": [model for _app, _servers, model, _route in stacks]}},
            {"apply_upstream": {"module": alpha_chart["module"], "paths": ["config/manifests/gateway/gke/gateway.yaml"]}},
            {"apply": {"documents": [route for _app, _servers, _model, route in stacks]}},
            {"wait": {"deployments": [name for app, *_rest in stacks for name in (app, f"{app}-preview-epp")],
                      "gateways": [GENERATED_GATEWAY],
                      "routes": [route["metadata"]["name"] for *_rest, route in stacks]}},
        ],
    }


def load(name):
    generated = GENERATED_POOLS.match(name)
    if generated:
        return pools_scenario(int(generated.group(1)))
    path = SCENARIOS_DIR / name / "scenario.yaml"
    if not path.exists():
        raise SandboxError(f"no scenario {name!r} (looked for {path}); known: {', '.join(available())}, pools-N")
    return yaml.safe_load(path.read_text()) or {}


def _module(reference):
    """`MODULE@{NAME}` -> `MODULE@<versions.NAME>`; a literal version passes through."""
    try:
        return string.Formatter().vformat(reference, (), vars(versions))
    except KeyError as missing:
        raise SandboxError(f"{reference!r} names {missing}, which versions.py does not define") from None


def _apply(kube, context, namespace, files=(), documents=()):
    kube.apply([doc for f in files for doc in load_documents(context.directory / f)] + list(documents),
               namespace=namespace)


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
    run_steps(kube, load(name).get("steps") or [], name, progress, logs, state_dir, SCENARIOS_DIR / name)


def run_steps(kube, steps, label, progress, logs, state_dir, directory=SCENARIOS_DIR):
    """Run scenario steps (as a scenario.yaml lists them; files relative to `directory`) on a sandbox."""
    context = Context(Path(directory), logs, Path(state_dir))
    for number, step in enumerate(steps, start=1):
        if len(step) != 1 or next(iter(step)) not in STEPS:
            raise SandboxError(f"scenario {label} step {number}: expected one of {sorted(STEPS)}, got {step}")
        kind, arguments = next(iter(step.items()))
        arguments = step_arguments(kind, arguments)
        progress.say(f"scenario {label} step {number}: {kind} {_describe(arguments)}")
        STEPS[kind](kube, context, **arguments)


def step_arguments(kind, arguments):
    """A step's keyword arguments, its namespace made explicit; `apply` may be written as a bare list of files."""
    if kind == "apply" and isinstance(arguments, list):
        arguments = {"files": arguments}
    return dict({"namespace": DEFAULT_NAMESPACE}, **arguments)


def _describe(arguments):
    shown = {k: v for k, v in arguments.items() if k not in ("json_patch", "set", "documents")}
    if "documents" in arguments:
        shown["documents"] = len(arguments["documents"])
    return " ".join(f"{k}={v}" for k, v in shown.items())
