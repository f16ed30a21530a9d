"""From an HTTPRoute backendRef to the pod that answers, as GKE and the EPP decide it.

resolve() runs once per programmed configuration and yields either a Failure
(what every request to that backend gets) or a backend object whose pick() runs
per request: it applies the endpoint picker's rules (failure mode, the v0.3.0
InferenceModel lookup and rewrite, the v1.0 model-rewrite header) and chooses a
Ready pod.
"""

import json
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Pick:
    endpoint: Endpoint
    body: bytes


@dataclass(frozen=True)
class RefProblem:
    """Why a backendRef does not resolve, in HTTPRoute ResolvedRefs terms."""

    reason: str
    message: str


# --- endpoint picker args -------------------------------------------------

V0_FLAGS = {"poolName": "name", "poolNamespace": "namespace"}
V1_FLAGS = {"pool-name": "name", "pool-namespace": "namespace", "pool-group": "group"}


@dataclass(frozen=True)
class EppConfig:
    """The pool an EPP container watches. style is "v0" (camelCase flags, v0.x) or "v1" (kebab-case, v1.0+)."""

    style: str
    pool_name: str | None
    pool_namespace: str
    pool_group: str

    def serves(self, group, namespace, name):
        return (self.pool_name, self.pool_namespace, self.pool_group) == (name, namespace, group)


class EppArgsError(ValueError):
    pass


def parse_epp_args(argv):
    """EppConfig from an EPP command line, None when it names no pool flag at all.

    Go's flag package takes -flag, --flag, with the value as the next word or after "=".
    """
    found = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if not token.startswith("-"):
            continue
        flag, has_value, value = token.lstrip("-").partition("=")
        style = "v0" if flag in V0_FLAGS else "v1" if flag in V1_FLAGS else None
        if style is None:
            continue
        if not has_value:
            if index >= len(argv):
                raise EppArgsError(f"flag {token} has no value")
            value = argv[index]
            index += 1
        found[(style, {**V0_FLAGS, **V1_FLAGS}[flag])] = value
    styles = {style for style, _field in found}
    if not styles:
        return None
    if len(styles) > 1:
        # Each EPP release rejects the other's flags as undefined and exits.
        raise EppArgsError("mixes v0.x (-poolName) and v1.0 (--pool-name) flags; a real EPP exits on either")
    style = styles.pop()
    return EppConfig(
        style=style,
        pool_name=found.get((style, "name")),
        pool_namespace=found.get((style, "namespace"), api.DEFAULT_EPP_POOL_NAMESPACE),
        # A v0.x EPP only knows the alpha group.
        pool_group=api.ALPHA_GROUP if style == "v0" else found.get((style, "group"), api.DEFAULT_EPP_POOL_GROUP))


def _epp_config_of(deployment):
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        config = parse_epp_args([*container["command"], *container["args"]])
        if config:
            return config
    return None


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


def serving_epp(snapshot, spec):
    """(EppConfig of an available EPP serving this pool, None) or (None, why there is none).

    The pool's EPP Service must exist (see epp_service_problem).
    """
    service = snapshot.get("services", spec.namespace, spec.epp_name)
    service_id = f"{spec.namespace}/{spec.epp_name}"
    if spec.epp_port not in [p["port"] for p in service["spec"]["ports"]]:
        return None, f"EPP Service {service_id} has no port {spec.epp_port}"
    selector = service["spec"]["selector"]
    deployments = [d for d in snapshot.in_namespace("deployments", spec.namespace)
                   if selector and labels_match(selector, d["spec"]["template"]["metadata"]["labels"])]
    if not deployments:
        return None, f"no Deployment backs EPP Service {service_id}"
    problems = []
    for deployment in deployments:
        deployment_id = f"{spec.namespace}/{deployment['metadata']['name']}"
        try:
            config = _epp_config_of(deployment)
        except EppArgsError as error:
            problems.append(f"EPP Deployment {deployment_id} {error}")
            continue
        if config is None or config.pool_name is None:
            problems.append(f"EPP Deployment {deployment_id} names no pool (no -poolName/--pool-name arg)")
        elif not config.serves(spec.group, spec.namespace, spec.name):
            problems.append(
                f"EPP Deployment {deployment_id} ({config.style} flags) serves pool "
                f"{config.pool_group}/{config.pool_namespace}/{config.pool_name}, not {spec.id}")
        elif not deployment["availableReplicas"]:
            problems.append(f"EPP Deployment {deployment_id} has no available replicas")
        else:
            return config, None
    return None, "; ".join(problems)


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
            endpoints.append(Endpoint(uid=pod["metadata"]["uid"], pod_id=pod_id))
        else:
            wrong_port.append(f"{pod_id} serves port {served.port}")
    return tuple(endpoints), wrong_port


def models_for_pool(snapshot, spec):
    """modelName -> InferenceModel spec for this pool; the oldest object wins a name, as in the v0.3.0 EPP."""
    chosen = {}
    models = sorted(snapshot.in_namespace("inferencemodels", spec.namespace),
                    key=lambda m: (m["metadata"].get("creationTimestamp", ""), m["metadata"]["name"]))
    for model in models:
        ref = model["spec"].get("poolRef", {})
        if ref.get("name") == spec.name and ref.get("group", api.ALPHA_GROUP) == spec.group:
            chosen.setdefault(model["spec"]["modelName"], model["spec"])
    return chosen


def draw_target_model(model_spec, rng):
    """The v0.3.0 EPP's RandomWeightedDraw: uniform without weights, else proportional to weight."""
    targets = model_spec.get("targetModels") or []
    if not targets:
        return model_spec["modelName"]
    if targets[0].get("weight") is None:
        return targets[rng.randrange(len(targets))]["name"]
    value = rng.randrange(sum(t["weight"] for t in targets))
    for target in targets:
        if value < target["weight"]:
            return target["name"]
        value -= target["weight"]
    raise AssertionError("unreachable: value is below the total weight")


def _rewrite_model(body, model):
    request = json.loads(body)
    request["model"] = model
    return json.dumps(request).encode()


@dataclass(frozen=True)
class PoolBackend:
    spec: PoolSpec
    endpoints: tuple
    no_endpoint_reason: str
    epp_failure: Failure | None
    epp_style: str | None
    models: dict = field(default_factory=dict)

    def pick(self, body, headers, rng):
        """A Pick, or the Failure this request gets."""
        if self.epp_failure and self.spec.failure_mode != api.FAIL_OPEN:
            return self.epp_failure
        if self.epp_failure is None and body:
            # Without a working EPP (FailOpen) the load balancer forwards the body untouched.
            try:
                body = self._apply_epp_model_rules(body, headers, rng)
            except ValueError as error:
                return Failure(400, "BadRequest", str(error))
            except LookupError as error:
                return Failure(404, "ModelNotFound", error.args[0])
        if not self.endpoints:
            return Failure(503, "NoReadyEndpoints", self.no_endpoint_reason)
        return Pick(self.endpoints[rng.randrange(len(self.endpoints))], body)

    @property
    def pool_id(self):
        return self.spec.id

    def _apply_epp_model_rules(self, body, headers, rng):
        if self.epp_style == "v1":
            rewrite = headers.get(api.MODEL_REWRITE_HEADER)
            return _rewrite_model(body, rewrite) if rewrite else body
        try:
            model = json.loads(body).get("model")
        except (ValueError, AttributeError):
            raise ValueError("request body is not a JSON object") from None
        if not isinstance(model, str):
            raise ValueError("model not found in request")
        model_spec = self.models.get(model)
        if model_spec is None:
            raise LookupError(
                f"error finding a model object in InferenceModel for input {model} "
                f"(v0.3.0 EPP of pool {self.spec.id} rejects models without an InferenceModel)")
        target = draw_target_model(model_spec, rng)
        return body if target == model else _rewrite_model(body, target)


@dataclass(frozen=True)
class ServiceBackend:
    service_id: str
    endpoints: tuple
    pool_id = None

    def pick(self, body, headers, rng):
        if not self.endpoints:
            return Failure(503, "NoReadyEndpoints", f"Service {self.service_id} selects no ready model-server pod")
        return Pick(self.endpoints[rng.randrange(len(self.endpoints))], body)


def _pool_backend(snapshot, spec):
    endpoints, wrong_port = _ready_endpoints(snapshot, spec.namespace, spec.selector, spec.target_ports)
    no_endpoint_reason = f"InferencePool {spec.id} has no ready pod matching {spec.selector}" + (
        f" on target port {list(spec.target_ports)} ({', '.join(wrong_port)})" if wrong_port else "")
    epp, problem = serving_epp(snapshot, spec)
    if problem:
        failure = Failure(503, "EndpointPickerUnavailable", f"{problem} (failureMode {spec.failure_mode})")
        return PoolBackend(spec, endpoints, no_endpoint_reason, failure, None)
    models = models_for_pool(snapshot, spec) if epp.style == "v0" else {}
    return PoolBackend(spec, endpoints, no_endpoint_reason, None, epp.style, models)


def resolve(snapshot, route_namespace, ref):
    """(RefProblem or None, backend or Failure) for one HTTPRoute backendRef."""
    group, kind = ref.get("group", ""), ref.get("kind", api.SERVICE_KIND)
    namespace, name = ref.get("namespace", route_namespace), ref["name"]
    target = f"{group or 'core'}/{kind} {namespace}/{name}"
    if namespace != route_namespace:
        problem = RefProblem("RefNotPermitted", f"{target}: cross-namespace backendRefs are not supported")
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
