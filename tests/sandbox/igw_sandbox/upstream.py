"""Where the upstream YAML the sandbox uses lives in the Go module cache.

Nothing upstream is copied into the repository: every file is read from the
module's directory, which `go mod download` fills from the Go module proxy the
first time and finds in the cache afterwards.
"""

import functools
import json
import os
import subprocess
from pathlib import Path

from . import versions
from .waits import SandboxError

GATEWAY_API = "sigs.k8s.io/gateway-api"
INFERENCE_EXTENSION = "sigs.k8s.io/gateway-api-inference-extension"
KWOK = "sigs.k8s.io/kwok"
PROMETHEUS_ENGINE = "github.com/GoogleCloudPlatform/prometheus-engine"


@functools.cache
def module_dir(module, version):
    env = dict(os.environ, GOFLAGS="", GOTOOLCHAIN="local")
    result = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"],
                            cwd="/", env=env, capture_output=True, text=True, timeout=900, check=False)
    info = json.loads(result.stdout) if result.stdout.strip() else {}
    if result.returncode != 0 or "Dir" not in info:
        raise SandboxError(f"go mod download {module}@{version} failed: {info.get('Error') or result.stderr}")
    return Path(info["Dir"])


def module_file(module_at_version, relative_path):
    """A file or directory inside a module given as `module@version`."""
    if "@" not in module_at_version:
        raise SandboxError(f"{module_at_version!r} names no version (expected module@version)")
    module, version = module_at_version.split("@", 1)
    path = module_dir(module, version) / relative_path
    if not path.exists():
        raise SandboxError(f"{relative_path} does not exist in {module_at_version} ({path})")
    return path


def gateway_api_standard_crds():
    directory = module_dir(GATEWAY_API, versions.GATEWAY_API) / "config/crd/standard"
    return sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")


def inference_pool_v1_crd():
    return (module_dir(INFERENCE_EXTENSION, versions.GIE_GA)
            / "config/crd/bases/inference.networking.k8s.io_inferencepools.yaml")


def inference_objective_crd():
    """The InferenceObjective CRD of the v1 release: the v1.0 EPP will not start without it."""
    return (module_dir(INFERENCE_EXTENSION, versions.GIE_GA)
            / "config/crd/bases/inference.networking.x-k8s.io_inferenceobjectives.yaml")


def cluster_pod_monitoring_crd():
    return (module_dir(PROMETHEUS_ENGINE, versions.PROMETHEUS_ENGINE)
            / "charts/operator/crds/monitoring.googleapis.com_clusterpodmonitorings.yaml")


def kwok_stages():
    stages = module_dir(KWOK, versions.KWOK) / "kustomize/stage"
    return [
        stages / "node/fast/node-initialize.yaml",
        stages / "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        stages / "pod/fast/pod-ready.yaml",
        stages / "pod/fast/pod-complete.yaml",
        stages / "pod/fast/pod-delete.yaml",
    ]
