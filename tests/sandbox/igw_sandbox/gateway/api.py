"""API facts the simulated GKE gateway relies on, in one place."""

CONTROLLER_NAME = "networking.gke.io/gateway"

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"
GATEWAY_API_VERSION = f"{GATEWAY_GROUP}/{GATEWAY_VERSION}"
GATEWAY_KIND = "Gateway"
HTTPROUTE_KIND = "HTTPRoute"
REFERENCE_GRANT_VERSION = "v1beta1"

ALPHA_GROUP = "inference.networking.x-k8s.io"
GA_GROUP = "inference.networking.k8s.io"
POOL_VERSIONS = {ALPHA_GROUP: "v1alpha2", GA_GROUP: "v1"}
POOL_KIND = "InferencePool"
MODEL_KIND = "InferenceModel"
SERVICE_KIND = "Service"

# v1alpha2 extensionRef.portNumber has no schema default; implementations infer 9002.
DEFAULT_EPP_PORT = 9002
FAIL_CLOSE = "FailClose"
FAIL_OPEN = "FailOpen"
# A v1.0 EPP started without --pool-group watches the GA group.
DEFAULT_EPP_POOL_GROUP = GA_GROUP
DEFAULT_EPP_POOL_NAMESPACE = "default"

# Understood by the v1.0 EPP: rewrites the body's "model" before forwarding.
MODEL_REWRITE_HEADER = "x-gateway-model-name-rewrite"
# Set by the sandbox on every response the gateway itself generates.
FAILURE_HEADER = "x-sandbox-failure"
STATS_PATH = "/_sandbox/stats"


def pool_id(group, namespace, name):
    """How the sandbox names a pool in headers, stats and load-generator summaries."""
    return f"{group}/{namespace}/{name}"
