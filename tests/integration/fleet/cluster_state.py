"""A sandbox as the Kubernetes API shows it, read with the Kubernetes client, not the collection.

`snapshot` keeps every object a migration could touch, so that two snapshots
compared object by object show whether a cluster was left exactly as it was;
`assert_migrated` checks the end state of a finished migration of alpha-basic.
"""

import importlib.util
import json
from pathlib import Path

from kubernetes import client, config

REPO = Path(__file__).resolve().parents[3]
# The collection's API facts, read from their one home (api.py imports nothing of ours).
_spec = importlib.util.spec_from_file_location("igw_api", REPO / "plugins/module_utils/api.py")
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)

NS = "default"
ALPHA_POOL = "vllm-llama3-8b-instruct-preview"
GA_POOL = "vllm-llama3-8b-instruct-ga"
ROUTE = "llm-route"
BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
ALPHA_SERVED_BY = "%s/%s/%s" % (api.ALPHA_GROUP, NS, ALPHA_POOL)
GA_SERVED_BY = "%s/%s/%s" % (api.GA_GROUP, NS, GA_POOL)
# Written by the control plane and kwok on their own, whatever a client does: events, leader
# election leases, node heartbeats and the endpoints that follow pod readiness.
SELF_CHANGING = {("", "events"), ("events.k8s.io", "events"), ("coordination.k8s.io", "leases"), ("", "nodes"),
                 ("", "endpoints"), ("discovery.k8s.io", "endpointslices")}
# Bookkeeping of the API server itself; `status` is what controllers (and the simulated gateway) report.
UNCOMPARED_METADATA = ("resourceVersion", "managedFields")


class ClusterState:
    def __init__(self, kubeconfig):
        self.client = config.new_client_from_config(config_file=str(kubeconfig))
        self.custom = client.CustomObjectsApi(self.client)
        self.extensions = client.ApiextensionsV1Api(self.client)

    def _get(self, path):
        response = self.client.call_api(*self.client.param_serialize("GET", path, auth_settings=["BearerToken"]))
        return json.loads(response.read())

    def listable_resources(self):
        """(group, group/version path, plural) of every listable resource type, at its group's preferred version."""
        versions = [("", "/api/v1")] + [
            (group["name"], "/apis/" + group["preferredVersion"]["groupVersion"])
            for group in self._get("/apis")["groups"]]
        return [(group, path, resource["name"]) for group, path in versions
                for resource in self._get(path)["resources"]
                if "/" not in resource["name"] and "list" in resource["verbs"]]

    def snapshot(self):
        """(group, plural, namespace, name) -> the object without its status and API-server bookkeeping."""
        objects = {}
        for group, path, plural in self.listable_resources():
            if (group, plural) in SELF_CHANGING:
                continue
            for item in self._get("%s/%s" % (path, plural))["items"]:
                metadata = item["metadata"]
                kept = dict((key, value) for key, value in item.items() if key != "status")
                kept["metadata"] = dict((k, v) for k, v in metadata.items() if k not in UNCOMPARED_METADATA)
                objects[(group, plural, metadata.get("namespace"), metadata["name"])] = kept
        return objects

    def route(self):
        return self.custom.get_namespaced_custom_object(api.HTTP_ROUTE.group, api.HTTP_ROUTE.version, NS,
                                                        api.HTTP_ROUTE.plural, ROUTE)

    def crd_names(self):
        return set(crd.metadata.name for crd in self.extensions.list_custom_resource_definition().items)

    def v1_pools(self):
        listed = self.custom.list_namespaced_custom_object(api.GA_POOL.group, api.GA_POOL.version, NS,
                                                           api.GA_POOL.plural)
        return sorted(item["metadata"]["name"] for item in listed["items"])


def differences(before, after):
    """What changed between two snapshots, one line per object added, removed or changed."""
    lines = ["removed: %s" % (key,) for key in sorted(set(before) - set(after), key=str)]
    lines += ["added: %s" % (key,) for key in sorted(set(after) - set(before), key=str)]
    for key in sorted(set(before) & set(after), key=str):
        if before[key] != after[key]:
            fields = sorted(field for field in set(before[key]) | set(after[key])
                            if before[key].get(field) != after[key].get(field))
            was, now = (json.dumps(dict((f, side[key].get(f)) for f in fields)) for side in (before, after))
            lines.append("changed: %s in %s: %s -> %s" % (key, ", ".join(fields), was, now))
    return lines


def assert_migrated(state):
    """alpha-basic migrated: no preview pool or CRD left, the v1 pool in place, llm-route sending only to it."""
    crds = state.crd_names()
    assert not crds & set(api.ALPHA_CRDS), "preview CRDs left: %s" % sorted(crds & set(api.ALPHA_CRDS))
    assert api.GA_POOL.crd_name in crds and api.INFERENCE_OBJECTIVE.crd_name in crds
    assert state.v1_pools() == [GA_POOL]
    refs = [ref for rule in state.route()["spec"]["rules"] for ref in rule.get("backendRefs") or []]
    assert refs and all(ref.get("group") == api.GA_GROUP and ref.get("kind") == api.GA_POOL.kind
                        and ref["name"] == GA_POOL for ref in refs), refs


def assert_untouched(before, after):
    assert before == after, "the cluster changed:\n" + "\n".join(differences(before, after))
