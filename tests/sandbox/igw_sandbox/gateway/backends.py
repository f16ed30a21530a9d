"""From an HTTPRoute backendRef to what can answer it, as GKE's load balancer sees it.

resolve() runs once per programmed configuration and yields either a Failure
(what every request to that backend gets) or a backend: a Service's ready pods,
or an InferencePool with its ready pods and the addresses of the endpoint
pickers behind its EPP Service. Which pod serves a request, and what happens to
the request on the way, is the real EPP's decision over ext_proc (dataplane.py).
"""

from dataclasses import dataclass
from typing import NamedTuple

from .. import modelserver
from . import api
from .snapshot import POOL_KEYS, labels_match


@dataclass(frozen=True)
class Failure:
    status: int
    reason: str
    message: str


@dataclass(frozen=True)
class Endpoint:
    uid: str
    pod_id: str
    address: tuple  # (pod IP, port): where the pod's model server listens in the pod network


@dataclass(frozen=True)
class RefProblem:
    """Why a backendRef does not resolve, in HTTPRoute ResolvedRefs terms."""

    reason: str
    message: str


# --- pools ------------------------------------------------------------------

@dataclass(frozen=True)
class PoolSpec:
    """The fields of either InferencePool version that routing needs."""

    group: str
    namespace: str
    name: str
    selector: dict
    target_ports: tuple
    epp_group: str
    epp_kind: str
    epp_name: str
    epp_port: int | None
    failure_mode: str

    @property
    def id(self):
        return api.pool_id(self.group, self.namespace, self.name)


def pool_spec(group, pool):
    spec = pool["spec"]
    if group == api.ALPHA_GROUP:
        ref = spec.get("extensionRef", {})
        selector, ports = spec.get("selector", {}), (spec.get("targetPortNumber"),)
        port = ref.get("portNumber", api.DEFAULT_EPP_PORT)
    else:
        ref = spec.get("endpointPickerRef", {})
        selector = spec.get("selector", {}).get("matchLabels", {})
        ports = tuple(p["number"] for p in spec.get("targetPorts", []))
        port = ref.get("port", {}).get("number")
    return PoolSpec(group=group, namespace=pool["metadata"]["namespace"], name=pool["metadata"]["name"],
                    selector=selector, target_ports=ports, epp_group=ref.get("group", ""),
                    epp_kind=ref.get("kind", api.SERVICE_KIND), epp_name=ref.get("name", ""), epp_port=port,
                    failure_mode=ref.get("failureMode", api.FAIL_CLOSE))


def epp_service_problem(snapshot, spec):
    """Why the pool's endpoint picker reference does not resolve, or None."""
    if spec.epp_group != "" or spec.epp_kind != api.SERVICE_KIND:
        return f"endpoint picker reference kind {spec.epp_group or 'core'}/{spec.epp_kind} is not supported"
    if snapshot.get("services", spec.namespace, spec.epp_name) is None:
        # Wording after GKE's GWCER104 error for a missing extension service.
        return (f"GWCER104: InferencePool {spec.namespace}/{spec.name} extension service "
                f"{spec.namespace}/{spec.epp_name} not found")
    return None


def _target_port(pod, target_port):
    if isinstance(target_port, int):
        return target_port
    for container in pod["spec"]["containers"]:
        for port in container.get("ports", []):
            if port.get("name") == target_port:
                return port.get("containerPort")
    return None


class EppTarget(NamedTuple):
    """A ready endpoint picker: where it listens, and which pod that is (kwok may give a new pod the address of a
    deleted one; the relay must not go on using a connection to the deleted pod)."""

    address: str  # "ip:port"
    pod_uid: str


def epp_targets(snapshot, spec):
    """((EppTarget, ...) of the ready pods behind the pool's EPP Service, why there is none or None).

    The pool's EPP Service must exist (see epp_service_problem).
    """
    service = snapshot.get("services", spec.namespace, spec.epp_name)
    service_id = f"{spec.namespace}/{spec.epp_name}"
    ports = [p for p in service["spec"]["ports"] if p["port"] == spec.epp_port]
    if not ports:
        return (), f"EPP Service {service_id} has no port {spec.epp_port}"
    selector = service["spec"]["selector"]
    targets = []
    for pod in snapshot.in_namespace("pods", spec.namespace):
        if selector and pod["ready"] and pod.get("ip") and labels_match(selector, pod["metadata"].get("labels", {})):
            port = _target_port(pod, ports[0]["targetPort"])
            if port:
                targets.append(EppTarget(f"{pod['ip']}:{port}", pod["metadata"]["uid"]))
    if not targets:
        return (), f"EPP Service {service_id} selects no ready pod"
    return tuple(sorted(targets)), None


def _ready_endpoints(snapshot, namespace, selector, ports):
    """Ready model-server pods matching `selector`; ports=None accepts any serving port."""
    endpoints, wrong_port = [], []
    for pod in snapshot.in_namespace("pods", namespace):
        if not (selector and pod["ready"] and labels_match(selector, pod["metadata"].get("labels", {}))):
            continue
        served = modelserver.pod_served_models(pod)
        if served is None:
            continue
        pod_id = f"{namespace}/{pod['metadata']['name']}"
        if ports is None or served.port in ports:
            endpoints.append(Endpoint(uid=pod["metadata"]["uid"], pod_id=pod_id, address=(pod.get("ip"), served.port)))
        else:
            wrong_port.append(f"{pod_id} serves port {served.port}")
    return tuple(endpoints), wrong_port


@dataclass(frozen=True)
class PoolBackend:
    spec: PoolSpec
    endpoints: tuple
    no_endpoint_reason: str
    epp_targets: tuple  # EppTarget of each ready endpoint picker behind the pool's EPP Service
    epp_problem: str | None

    @property
    def pool_id(self):
        return self.spec.id

    @property
    def fails_open(self):
        return self.spec.failure_mode == api.FAIL_OPEN

    def endpoint_at(self, address):
        """The pool's endpoint at (ip, port), or None (the EPP may know a pod the programme does not yet)."""
        return next((e for e in self.endpoints if e.address == address), None)

    def any_endpoint(self, rng):
        """A ready endpoint chosen at random (FailOpen without an EPP), or the Failure when there is none."""
        if not self.endpoints:
            return Failure(503, "NoReadyEndpoints", self.no_endpoint_reason)
        return self.endpoints[rng.randrange(len(self.endpoints))]


@dataclass(frozen=True)
class ServiceBackend:
    service_id: str
    endpoints: tuple
    pool_id = None

    def any_endpoint(self, rng):
        if not self.endpoints:
            return Failure(503, "NoReadyEndpoints", f"Service {self.service_id} selects no ready model-server pod")
        return self.endpoints[rng.randrange(len(self.endpoints))]


def _pool_backend(snapshot, spec):
    endpoints, wrong_port = _ready_endpoints(snapshot, spec.namespace, spec.selector, spec.target_ports)
    no_endpoint_reason = f"InferencePool {spec.id} has no ready pod matching {spec.selector}" + (
        f" on target port {list(spec.target_ports)} ({', '.join(wrong_port)})" if wrong_port else "")
    targets, problem = epp_targets(snapshot, spec)
    return PoolBackend(spec, endpoints, no_endpoint_reason, targets, problem)


def resolve(snapshot, route_namespace, ref):
    """(RefProblem or None, backend or Failure) for one HTTPRoute backendRef."""
    group, kind = ref.get("group", ""), ref.get("kind", api.SERVICE_KIND)
    namespace, name = ref.get("namespace", route_namespace), ref["name"]
    target = f"{group or 'core'}/{kind} {namespace}/{name}"
    if namespace != route_namespace and not snapshot.reference_granted(route_namespace, group, kind, namespace, name):
        problem = RefProblem("RefNotPermitted", f"{target}: no ReferenceGrant in namespace {namespace} lets "
                                                f"HTTPRoutes of namespace {route_namespace} refer to it")
    elif group == "" and kind == api.SERVICE_KIND:
        service = snapshot.get("services", namespace, name)
        if service is None:
            problem = RefProblem("BackendNotFound", f"Service {namespace}/{name} not found")
        else:
            endpoints = _ready_endpoints(snapshot, namespace, service["spec"]["selector"], None)[0]
            return None, ServiceBackend(f"{namespace}/{name}", endpoints)
    elif kind == api.POOL_KIND and group in POOL_KEYS:
        pool = snapshot.pool(group, namespace, name)
        if not snapshot.served(POOL_KEYS[group]):
            problem = RefProblem("InvalidKind", f"{target}: kind InferencePool in group {group} is not served "
                                                f"(its CRD is not installed)")
        elif pool is None:
            problem = RefProblem("BackendNotFound", f"InferencePool {namespace}/{name} ({group}) not found")
        else:
            spec = pool_spec(group, pool)
            service_problem = epp_service_problem(snapshot, spec)
            if service_problem is None:
                return None, _pool_backend(snapshot, spec)
            problem = RefProblem("BackendNotFound", service_problem)
    else:
        problem = RefProblem("InvalidKind", f"{target}: unsupported backend kind")
    # Gateway API: requests that would go to an unresolved backend get a 500.
    return problem, Failure(500, problem.reason, problem.message)
