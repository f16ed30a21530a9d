"""kubectl and helm against one sandbox, as a user of the cluster would run them."""

import json
import os
import subprocess

import yaml

from .waits import SandboxError

KUBECTL = os.environ.get("KUBECTL", "kubectl")
# The upstream CRDs run to megabytes of YAML: libyaml reads them ten times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
FIELD_MANAGER = "igw-sandbox"
COMMAND_TIMEOUT = 300


class Kube:
    def __init__(self, env):
        """`env`: the variables a user of this sandbox would have (KUBECONFIG, HELM, HELM_*_HOME, ...)."""
        self.env = dict(os.environ, **env)

    def _run(self, argv, input_text=None, check=True):
        result = subprocess.run(argv, input=input_text, env=self.env, capture_output=True, text=True,
                                timeout=COMMAND_TIMEOUT, check=False)
        if check and result.returncode != 0:
            raise SandboxError(f"`{' '.join(argv)}` failed ({result.returncode}):\n{result.stderr.strip()}")
        return result

    def kubectl(self, *args, input_text=None, check=True):
        return self._run([KUBECTL, *args], input_text, check)

    def helm(self, *args, check=True):
        return self._run([self.env["HELM"], *args], check=check)

    def get_json(self, *args):
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, documents, namespace=None, server_side=False):
        """Apply manifests (dicts). Server-side apply takes CRDs too big for the
        last-applied annotation; client-side apply is what a user's `kubectl apply` does."""
        args = ["apply", "-f", "-"]
        if server_side:
            args += ["--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
        if namespace:
            args += ["-n", namespace]
        self.kubectl(*args, input_text=dump_documents(documents))
        established = [d["metadata"]["name"] for d in documents if d.get("kind") == "CustomResourceDefinition"]
        if established:
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                         *[f"customresourcedefinition/{name}" for name in established])

    def delete(self, documents):
        """Delete the objects named by (apiVersion, kind, metadata) without waiting."""
        if documents:
            self.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-",
                         input_text=dump_documents(documents))


def load_documents(path):
    """The objects of a manifest file; a `kind: List` document counts as its items, as kubectl reads it."""
    with open(path) as stream:
        documents = [d for d in yaml.load_all(stream, Loader=_LOADER) if d]
    return [item for d in documents for item in (d.get("items") or [] if d.get("kind") == "List" else [d])]


def dump_documents(documents):
    return yaml.dump_all(documents, Dumper=_DUMPER, sort_keys=False)


def identity(manifest):
    """Just enough of a manifest for kubectl to find the object (get, delete)."""
    metadata = {"name": manifest["metadata"]["name"]}
    if manifest["metadata"].get("namespace"):
        metadata["namespace"] = manifest["metadata"]["namespace"]
    return {"apiVersion": manifest["apiVersion"], "kind": manifest["kind"], "metadata": metadata}
