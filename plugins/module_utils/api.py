# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Facts about the Inference Gateway APIs: groups, versions, kinds, CRD names, defaults.

Everything else in the collection imports its API knowledge from here, and this
module imports nothing of ours.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple


class ResourceType(namedtuple("ResourceType", ["group", "version", "kind", "plural"])):
    """One served resource: where it lives in the API and what its CRD is called."""

    __slots__ = ()

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def crd_name(self):
        return "%s.%s" % (self.plural, self.group)


ALPHA_GROUP = "inference.networking.x-k8s.io"
GA_GROUP = "inference.networking.k8s.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GKE_POLICY_GROUP = "networking.gke.io"
CORE_GROUP = ""

ALPHA_POOL = ResourceType(ALPHA_GROUP, "v1alpha2", "InferencePool", "inferencepools")
INFERENCE_MODEL = ResourceType(ALPHA_GROUP, "v1alpha2", "InferenceModel", "inferencemodels")
GA_POOL = ResourceType(GA_GROUP, "v1", "InferencePool", "inferencepools")
# InferenceObjective stays in the alpha group although the v1 stack uses it: the
# alpha group's CRDs cannot be removed wholesale.
INFERENCE_OBJECTIVE = ResourceType(ALPHA_GROUP, "v1alpha2", "InferenceObjective", "inferenceobjectives")
INFERENCE_MODEL_REWRITE = ResourceType(ALPHA_GROUP, "v1alpha2", "InferenceModelRewrite", "inferencemodelrewrites")

HTTP_ROUTE = ResourceType(GATEWAY_GROUP, "v1", "HTTPRoute", "httproutes")
GATEWAY = ResourceType(GATEWAY_GROUP, "v1", "Gateway", "gateways")
# Lets routes of one namespace reference backends in another; v1beta1 is the newest version Gateway API serves.
REFERENCE_GRANT = ResourceType(GATEWAY_GROUP, "v1beta1", "ReferenceGrant", "referencegrants")
HEALTH_CHECK_POLICY = ResourceType(GKE_POLICY_GROUP, "v1", "HealthCheckPolicy", "healthcheckpolicies")
GCP_BACKEND_POLICY = ResourceType(GKE_POLICY_GROUP, "v1", "GCPBackendPolicy", "gcpbackendpolicies")

CRD = ResourceType("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions")
DEPLOYMENT = ResourceType("apps", "v1", "Deployment", "deployments")
SERVICE = ResourceType(CORE_GROUP, "v1", "Service", "services")
SERVICE_ACCOUNT = ResourceType(CORE_GROUP, "v1", "ServiceAccount", "serviceaccounts")
CONFIG_MAP = ResourceType(CORE_GROUP, "v1", "ConfigMap", "configmaps")
NAMESPACE = ResourceType(CORE_GROUP, "v1", "Namespace", "namespaces")
POD = ResourceType(CORE_GROUP, "v1", "Pod", "pods")
SECRET = ResourceType(CORE_GROUP, "v1", "Secret", "secrets")
ROLE = ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles")
ROLE_BINDING = ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings")
CLUSTER_ROLE = ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles")
CLUSTER_ROLE_BINDING = ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings")

# The CRDs of the preview API that the migration removes at the end.
ALPHA_CRDS = (ALPHA_POOL.crd_name, INFERENCE_MODEL.crd_name)
# CRDs the GA stack still needs; deleting one of them takes the v1 stack down.
PROTECTED_CRDS = (INFERENCE_OBJECTIVE.crd_name, GA_POOL.crd_name)
# Every CRD the detect module reports on.
INFERENCE_CRDS = (ALPHA_POOL, INFERENCE_MODEL, GA_POOL, INFERENCE_OBJECTIVE, INFERENCE_MODEL_REWRITE)

POOL_TYPES = {ALPHA_GROUP: ALPHA_POOL, GA_GROUP: GA_POOL}

# Short names the roles use to address a resource type without spelling its group.
RESOURCE_TYPES = {
    "alpha_pool": ALPHA_POOL,
    "inference_model": INFERENCE_MODEL,
    "ga_pool": GA_POOL,
    "inference_objective": INFERENCE_OBJECTIVE,
    "inference_model_rewrite": INFERENCE_MODEL_REWRITE,
    "http_route": HTTP_ROUTE,
    "gateway": GATEWAY,
    "crd": CRD,
    "deployment": DEPLOYMENT,
}

# The v1alpha2 extensionRef port has no schema default; implementations infer
# 9002. The v1 CRD requires the port, so conversions write it out.
DEFAULT_EPP_PORT = 9002
DEFAULT_FAILURE_MODE = "FailClose"

# GKE installs the v1 InferencePool CRD itself from this version on.
GKE_SHIPS_GA_POOL_CRD_FROM = "1.34.0-gke.1626000"

# Criticality (InferenceModel) to priority (InferenceObjective). Upstream has no
# official table: Critical and Standard follow upstream's own manifests, and
# Sheddable is negative because v1.0 only sheds priority < 0 under saturation.
DEFAULT_PRIORITY_MAP = {"Critical": 2, "Standard": 1, "Sheddable": -1}

HELM_RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

# Labels and annotations the collection puts on what it creates, so that it
# touches only what the migration owns.
MIGRATION_LABEL = "inference-gateway.migration/managed"
MIGRATED_FROM_ANNOTATION = "inference-gateway.migration/migrated-from"
MIGRATION_LABEL_VALUE = "true"
# On an InferenceObjective made from an InferenceModel: the model name clients sent to that InferenceModel
# (an objective has no model name of its own), so that a later run can still probe the pool with it.
MODEL_NAME_ANNOTATION = "inference-gateway.migration/model-name"
# The field manager of every write the collection's modules make: metadata.managedFields then tells
# the migration's own edits from those of another writer (GitOps self-heal, a controller, a person).
FIELD_MANAGER = "inference-gateway-migration"

GA_RELEASE = "v1.0.0"
# The GIE releases whose v1 stack this collection builds, and what each needs, are the table in releases.py.
# GIE releases from v1.6.0 on: the endpoint picker, InferenceObjective and InferenceModelRewrite moved to
# llm-d-router (API group llm-d.ai), so GIE no longer ships the v1 stack this collection builds.
GIE_RELEASES_WITHOUT_EPP = ("v1.6.0", "v1.6.1")
# Where the GIE project publishes its releases. A mirror (an air-gapped cluster's, the sandbox's) replaces the
# base and keeps the paths below it.
GIE_DOWNLOAD_URL = "https://github.com/kubernetes-sigs/gateway-api-inference-extension"
CRD_FILE_PATH = "raw/%s/config/crd/bases/%s.yaml"
CHART_REGISTRY = "oci://registry.k8s.io/gateway-api-inference-extension/charts"
CHART_NAME = "inferencepool"
DEFAULT_CHART_REF = CHART_REGISTRY + "/" + CHART_NAME
GA_RELEASE_SUFFIX = "-ga"
PREVIEW_RELEASE_SUFFIX = "-preview"

# The request header the v1.0 endpoint picker takes a model-name rewrite from.
MODEL_NAME_REWRITE_HEADER = "x-gateway-model-name-rewrite"

# Who manages a CRD, as detection reports it. A CRD the platform reconciles must
# never be overwritten: GKE's addon manager labels what it owns, and GKE
# components mark theirs with keys under the components prefix.
PLATFORM_MANAGED_LABEL = "addonmanager.kubernetes.io/mode"
GKE_COMPONENT_KEY_PREFIX = "components.gke.io/"
HELM_MANAGED_BY_VALUE = "Helm"
MANAGER_GKE = "gke"
MANAGER_HELM = "helm"
# Who else manages an object the migration writes or deletes (managers.py reads these).
# Argo CD tracks by annotation (the default from Argo CD 3.0) or by label (the default before);
# app.kubernetes.io/instance is also what Helm charts set to the release name, so the label alone
# counts as Argo CD only on an object no `helm install` wrote (no meta.helm.sh/release-* annotation:
# Argo CD renders charts with `helm template`, which writes none).
ARGOCD_TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
ARGOCD_INSTANCE_LABEL = "app.kubernetes.io/instance"
# Flux labels every object it applies with the Kustomization, and every object of a release it
# manages with the HelmRelease, that it came from.
FLUX_KUSTOMIZATION_NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
FLUX_KUSTOMIZATION_NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_HELMRELEASE_NAME_LABEL = "helm.toolkit.fluxcd.io/name"
FLUX_HELMRELEASE_NAMESPACE_LABEL = "helm.toolkit.fluxcd.io/namespace"
# What `kubectl apply` (client side) leaves on an object: the manifest it applied, as JSON.
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
# The managers an operator acknowledges with migration_accept_managed_objects.
MANAGER_ARGOCD = "argocd"
MANAGER_FLUX = "flux"
MANAGER_OWNER = "owner"
OBJECT_MANAGERS = (MANAGER_ARGOCD, MANAGER_FLUX, MANAGER_OWNER)
# Every CRD of an upstream bundle carries the release it came from.
CRD_BUNDLE_VERSION_ANNOTATION = "inference.networking.k8s.io/bundle-version"

# InferenceModel.criticality is optional; consumers treat unset as Standard.
DEFAULT_CRITICALITY = "Standard"
# What an omitted poolRef.group means: InferenceModel points into the alpha
# group, the v1.0 InferenceObjective CRD into the GA group.
MODEL_POOL_REF_DEFAULT_GROUP = ALPHA_GROUP
OBJECTIVE_POOL_REF_DEFAULT_GROUP = GA_GROUP
# InferenceModelRewrite rules call their target list `split` in v1.2 and
# `targets` from v1.3 on; the installed CRD's schema says which one applies.
MODEL_REWRITE_TARGET_FIELDS = ("targets", "split")

# Where a preview pool's migration stands, as detection reports it and the roles read it.
PHASE_NOT_STARTED = "not_started"
PHASE_SIDE_BY_SIDE = "side_by_side"
PHASE_SHIFTING = "shifting"
PHASE_SHIFTED = "shifted"
PHASE_ALPHA_REMOVED = "alpha_removed"
PHASES = (PHASE_NOT_STARTED, PHASE_SIDE_BY_SIDE, PHASE_SHIFTING, PHASE_SHIFTED, PHASE_ALPHA_REMOVED)

# Gateway API bounds an HTTPRoute backendRef weight to 0..1,000,000.
MAX_BACKEND_WEIGHT = 1000000

# The v1.0 endpoint picker (EPP) as the upstream chart and manifests run it.
EPP_IMAGE = "registry.k8s.io/gateway-api-inference-extension/epp"
EPP_HEALTH_PORT = 9003
EPP_METRICS_PORT = 9090
EPP_HEALTH_SERVICE = "inference-extension"
EPP_CONFIG_API_VERSION = ALPHA_GROUP + "/v1alpha1"
EPP_CONFIG_KIND = "EndpointPickerConfig"
# v0.5 alpha pools carry a synthetic status parent of this kind until a gateway attaches them.
SYNTHETIC_PARENT_KIND = "Status"

# How an endpoint picker is told which pool it serves. v0.x flags are camelCase
# and know only the alpha group; v1.x flags are kebab-case and default to the GA
# group unless --pool-group says otherwise.
EPP_ALPHA_POOL_NAME_FLAG = "poolName"
EPP_ALPHA_POOL_NAMESPACE_FLAG = "poolNamespace"
EPP_POOL_NAME_FLAG = "pool-name"
EPP_POOL_NAMESPACE_FLAG = "pool-namespace"
EPP_POOL_GROUP_FLAG = "pool-group"
EPP_DEFAULT_POOL_NAMESPACE = "default"

# Helm 3 keeps each release revision in a Secret sh.helm.release.v1.<release>.v<N>
# of this type, labelled owner=helm and name=<release>.
HELM_RELEASE_SECRET_TYPE = "helm.sh/release.v1"
HELM_RELEASE_OWNER_LABELS = {"owner": "helm"}
HELM_RELEASE_NAME_LABEL = "name"

# The inferencepool chart renders one on GKE (provider.name=gke).
CLUSTER_POD_MONITORING = ResourceType("monitoring.googleapis.com", "v1", "ClusterPodMonitoring", "clusterpodmonitorings")


def crd_file_name(resource):
    """The upstream file name of a CRD under config/crd/bases."""
    return "%s_%s" % (resource.group, resource.plural)
