"""Benchmark: detection of a large preview estate, against kubectl reading the same objects.

Method: for 100 and then 1,000 namespaces, a fresh sandbox (`bench-detect`, API server only: no endpoint
picker runs, as no pool has a Deployment) with the GIE v0.3.0 preview CRDs, seeded with 2,000 preview
InferencePools (inference.networking.x-k8s.io/v1alpha2), 4,000 InferenceModels (two per pool) and 2,000
HTTPRoutes (one per pool), spread round-robin over the namespaces (estate_objects), created with
`kubectl create -f -` of generated lists in SEED_PROCESSES processes at once (the seeding time is a note). Then
kubectl KUBECTL_REPEATS times (the median kept), and the module and the function DETECTION_REPEATS times (once):

- kubectl: one `kubectl get namespaces,inferencepools.inference.networking.x-k8s.io,
  inferencemodels.inference.networking.x-k8s.io,httproutes.gateway.networking.k8s.io -A -o json` (the four
  types in one process), wall time;
- module: `inferencepool_detect` run once by ansible-playbook (tests/integration/runner.py's run_task, the
  ansible.posix.json callback), the task's own duration as the callback records it (module start-up included,
  ansible-playbook's start-up not), and the whole ansible-playbook process's wall time; the peak resident
  memory is the largest of ansible-playbook and its children (getrusage RUSAGE_CHILDREN ru_maxrss of a
  process that runs only that ansible-playbook), which includes the module's process;
- function: the collection's `inventory.detect` called in a Python process of its own, its wall time, every
  HTTP request it sent to the API server (counted by wrapping the kubernetes client's REST layer, which every
  call of the collection goes through) and the process's peak resident memory (VmHWM).

The ratio is the module task's duration over kubectl's; the target is at most 1.5. The same number of API
calls at 100 and at 1,000 namespaces shows the calls do not depend on the number of namespaces.

    PYTHONPATH=tests/sandbox .venv/bin/python benchmarks/detection_scale.py
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from migration_runs import REPO  # first: it puts the sandbox and the integration helpers on sys.path
from igw_sandbox import scenarios
from igw_sandbox.cluster import Sandbox
from igw_sandbox.kube import dump_documents
from igw_sandbox.waits import Progress
from runner import VENV_BIN, ansible_env

NAME = "bench-detect"
NAMESPACE_COUNTS = (100, 1000)
POOLS, MODELS_PER_POOL = 2000, 2
KUBECTL_REPEATS = 3
# Once each: at 8,000 objects one detection takes minutes on the 2-core machine, and make bench must end in 30.
DETECTION_REPEATS = 1
SEED_PROCESSES = 4
RATIO_TARGET = 1.5
ALPHA_GROUP = "inference.networking.x-k8s.io"
KUBECTL_TYPES = ("namespaces", f"inferencepools.{ALPHA_GROUP}", f"inferencemodels.{ALPHA_GROUP}",
                 "httproutes.gateway.networking.k8s.io")
PREVIEW_CRDS = {"apply_upstream": {"module": "sigs.k8s.io/gateway-api-inference-extension@{GIE_ALPHA}", "paths": [
    "config/crd/bases/inference.networking.x-k8s.io_inferencepools.yaml",
    "config/crd/bases/inference.networking.x-k8s.io_inferencemodels.yaml"]}}

# Run in a process of its own: the collection's detection, every HTTP request counted, peak memory read.
FUNCTION_PROBE = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
_AnsibleCollectionFinder(paths=[sys.argv[2]])._install()
from kubernetes import config
from kubernetes.client import rest
from kubernetes.dynamic import DynamicClient
from ansible_collections.inference_gateway.migration.plugins.module_utils import inventory
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import Cluster
calls = []
_request = rest.RESTClientObject.request
def counted(self, method, url, *args, **kwargs):
    calls.append(method + " " + url.split("?")[0])
    return _request(self, method, url, *args, **kwargs)
rest.RESTClientObject.request = counted
started = time.monotonic()
report = inventory.detect(Cluster(DynamicClient(config.new_client_from_config(sys.argv[1]))))
seconds = time.monotonic() - started
peak = next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "calls": len(calls), "peak_mib": peak / 1024,
                  "pools": len(report["alpha_pools"])}))
"""

# Run in a process of its own, so that its RUSAGE_CHILDREN covers ansible-playbook and the module only.
MODULE_PROBE = r"""
import json, resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.monotonic() - started
print(json.dumps({"seconds": seconds, "code": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-2000:],
                  "peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def estate_objects(namespaces, pools=POOLS, models_per_pool=MODELS_PER_POOL):
    """The namespaces, then per pool: a preview InferencePool, its InferenceModels and an HTTPRoute to it, pool i
    in namespace i modulo `namespaces` (so every namespace holds pools once there are more pools than namespaces)."""
    spaces = [f"estate-{n:04d}" for n in range(namespaces)]
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": space}} for space in spaces]
    for i in range(pools):
        namespace, pool = spaces[i % namespaces], f"pool-{i:04d}"
        objects.append({"apiVersion": f"{ALPHA_GROUP}/v1alpha2", "kind": "InferencePool",
                        "metadata": {"name": pool, "namespace": namespace},
                        "spec": {"selector": {"app": pool}, "targetPortNumber": 8000,
                                 "extensionRef": {"name": f"{pool}-epp"}}})
        objects += [{"apiVersion": f"{ALPHA_GROUP}/v1alpha2", "kind": "InferenceModel",
                     "metadata": {"name": f"{pool}-model-{m}", "namespace": namespace},
                     "spec": {"modelName": f"{pool}-model-{m}", "criticality": "Standard", "poolRef": {"name": pool}}}
                    for m in range(models_per_pool)]
        objects.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                        "metadata": {"name": f"{pool}-route", "namespace": namespace},
                        "spec": {"parentRefs": [{"name": "inference-gateway"}],
                                 "rules": [{"backendRefs": [{"group": ALPHA_GROUP, "kind": "InferencePool",
                                                             "name": pool}]}]}})
    return objects


def chunks(items, count):
    """`items` dealt into `count` lists of nearly equal length, order kept within each."""
    return [items[i::count] for i in range(count) if items[i::count]]


def _seed(kube, namespaces):
    """Create the estate; seconds taken. Namespaces first, then the rest by several kubectl processes at once."""
    objects = estate_objects(namespaces)
    spaces = [o for o in objects if o["kind"] == "Namespace"]
    rest = [o for o in objects if o["kind"] != "Namespace"]
    started = time.monotonic()
    kube.kubectl("create", "-f", "-", input_text=dump_documents([{"apiVersion": "v1", "kind": "List", "items": spaces}]))
    with ThreadPoolExecutor(SEED_PROCESSES) as pool:
        for _done in pool.map(lambda part: kube.kubectl("create", "-f", "-", input_text=dump_documents(
                [{"apiVersion": "v1", "kind": "List", "items": part}])), chunks(rest, SEED_PROCESSES)):
            pass
    return time.monotonic() - started


def _kubectl_seconds(kube):
    started = time.monotonic()
    listed = json.loads(kube.kubectl("get", ",".join(KUBECTL_TYPES), "-A", "-o", "json").stdout)
    return time.monotonic() - started, len(listed["items"])


def _function_run(kubeconfig):
    done = subprocess.run([str(VENV_BIN / "python"), "-c", FUNCTION_PROBE, str(kubeconfig),
                           str(REPO / ".collections")], capture_output=True, text=True, check=True, timeout=600)
    return json.loads(done.stdout)


def _module_run(kubeconfig, scratch):
    """One ansible-playbook running inferencepool_detect once: (task seconds, process seconds, peak MiB)."""
    playbook = Path(scratch) / "detect.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "detect", "inference_gateway.migration.inferencepool_detect": {}, "register": "found"},
        {"name": "count", "ansible.builtin.debug": {"msg": "{{ found.alpha_pools | length }}"}}]}]))
    env = ansible_env(kubeconfig, {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    done = subprocess.run([sys.executable, "-c", MODULE_PROBE, str(VENV_BIN / "ansible-playbook"), str(playbook)],
                          env=env, cwd=REPO, capture_output=True, text=True, check=True, timeout=900)
    probe = json.loads(done.stdout)
    if probe["code"] != 0:
        raise RuntimeError(f"ansible-playbook failed: {probe['stdout'][-2000:]} {probe['stderr']}")
    task = json.loads(probe["stdout"])["plays"][0]["tasks"][0]
    return _duration(task["task"]["duration"]), probe["seconds"], probe["peak_mib"]


def _duration(duration):
    """Seconds between the ISO start and end the ansible.posix.json callback records for a task."""
    from datetime import datetime
    return (datetime.fromisoformat(duration["end"].replace("Z", "+00:00"))
            - datetime.fromisoformat(duration["start"].replace("Z", "+00:00"))).total_seconds()


def measure(namespaces, scratch):
    sandbox = Sandbox(NAME, None, None)
    sandbox.down()
    sandbox.up()
    try:
        kube = sandbox.kube()
        scenarios.run_steps(kube, [PREVIEW_CRDS], "preview CRDs", Progress(NAME), sandbox.layout.logs,
                            sandbox.layout.root)
        seed_seconds = _seed(kube, namespaces)
        kubectl = [_kubectl_seconds(kube) for _repeat in range(KUBECTL_REPEATS)]
        modules = [_module_run(sandbox.kubeconfig, scratch) for _repeat in range(DETECTION_REPEATS)]
        functions = [_function_run(sandbox.kubeconfig) for _repeat in range(DETECTION_REPEATS)]
    finally:
        sandbox.down()
    kubectl_seconds = statistics.median(s for s, _n in kubectl)
    module_seconds = statistics.median(task for task, _p, _m in modules)
    return {
        "namespaces": namespaces, "objects listed by kubectl": kubectl[0][1], "seed_s": round(seed_seconds, 1),
        "kubectl_s": round(kubectl_seconds, 2),
        "module_task_s": round(module_seconds, 2),
        "ansible_playbook_s": round(statistics.median(p for _t, p, _m in modules), 2),
        "function_s": round(statistics.median(f["seconds"] for f in functions), 2),
        "ratio_module_to_kubectl": round(module_seconds / kubectl_seconds, 2),
        "target_met": module_seconds <= RATIO_TARGET * kubectl_seconds,
        "api_calls": sorted({f["calls"] for f in functions}),
        "pools_found": functions[0]["pools"],
        "peak_mib_function": round(max(f["peak_mib"] for f in functions)),
        "peak_mib_ansible": round(max(m for _t, _p, m in modules)),
    }


def run_default():
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as scratch:
        rows = [measure(namespaces, scratch) for namespaces in NAMESPACE_COUNTS]
    calls = {tuple(row["api_calls"]) for row in rows}
    return {"target": f"module task at most {RATIO_TARGET} x kubectl",
            "API calls the same at every namespace count": len(calls) == 1,
            "rows": rows}


if __name__ == "__main__":
    print(json.dumps(run_default(), indent=1))
