"""Versions of every upstream part the sandbox builds or reads, in one place."""

KUBERNETES = "v1.34.10"
STAGING = "v0.34.10"
ETCD = "v3.6.4"
KWOK = "v0.8.0"
HELM = "v3.19.0"
GATEWAY_API = "v1.3.0"
GIE_ALPHA = "v0.3.0"
GIE_GA = "v1.0.0"
# Every GIE release the sandbox supports: the loopback mirrors serve its release downloads
# (CRD files and manifests.yaml) and its inferencepool chart, and build.epp_binary builds its
# endpoint picker (cmd/epp), the binary that chart deploys. One list for both, since a chart
# is only usable with the EPP of its own release. Adding a release is adding its tag here.
GIE_RELEASES = ("v0.3.0", "v0.5.1", "v1.0.0", "v1.3.0", "v1.5.0")
# The OCI registry that serves the charts, built with go install.
DISTRIBUTION = "v3.1.2"
# Carries the real ClusterPodMonitoring CRD that the inferencepool chart renders on GKE.
PROMETHEUS_ENGINE = "v0.13.0"

# The /version gitVersion each simulated GKE flavour reports. GKE at or above
# 1.34.0-gke.1626000 installs the v1 InferencePool CRD itself.
GKE_FLAVOURS = {
    "old": "v1.34.0-gke.1500000",
    "new": "v1.34.1-gke.1829001",
}
DEFAULT_FLAVOUR = "old"
