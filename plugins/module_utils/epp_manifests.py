# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The v1 endpoint picker stack rendered without Helm, mirroring what the upstream inferencepool chart renders."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, releases
from ansible_collections.inference_gateway.migration.plugins.module_utils.convert import GKE_PROVIDER, ga_release_name, pool_facts, v1_pool

# Names and labels as the upstream inferencepool chart derives them, so that a pool
# installed by Helm and one rendered here have the same EPP name.
EPP_NAME_BASE_LENGTH = 40
EPP_SUFFIX = "-epp"
EPP_SELECTOR_LABEL = "inferencepool"
EPP_CONTAINER = "epp"
EPP_CONFIG_FILE = "default-plugins.yaml"
EPP_CONFIG_DIR = "/config"
EPP_CONFIG_VOLUME = "plugins-config-volume"
# The v1.0 EPP refuses to start without a scheduler configuration; these are the
# chart's defaults.
EPP_SCORERS = ("queue-scorer", "kv-cache-utilization-scorer", "prefix-cache-scorer")
EPP_SCHEDULING_PROFILE = "default"
# Mirrors the longest grace period of the model servers the chart expects.
EPP_TERMINATION_GRACE_SECONDS = 130
EPP_PROBE_DELAY_SECONDS = 5
EPP_PROBE_PERIOD_SECONDS = 10
EPP_LOG_VERBOSITY = "1"
READ_VERBS = ["get", "list", "watch"]
REVIEW_VERBS = ["create"]
AUTH_REVIEW_RULES = (("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews"))
# What the chart renders with provider.name=gke, for pools rendered without Helm.
MODEL_SERVER_HEALTH_PATH = "/health"
GCP_BACKEND_TIMEOUT_SECONDS = 300


def epp_name(pool_name):
    """The EPP Deployment, Service and ServiceAccount name the inferencepool chart gives a release."""
    return pool_name.lower().strip()[:EPP_NAME_BASE_LENGTH] + EPP_SUFFIX


def _object(rtype, name, namespace, labels, **fields):
    metadata = {"name": name, "labels": labels}
    if namespace:
        metadata["namespace"] = namespace
    obj = {"apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": metadata}
    obj.update(fields)
    return obj


def _epp_config():
    scorers = [{"type": scorer} for scorer in EPP_SCORERS]
    config = {
        "apiVersion": api.EPP_CONFIG_API_VERSION,
        "kind": api.EPP_CONFIG_KIND,
        "plugins": scorers,
        "schedulingProfiles": [{"name": EPP_SCHEDULING_PROFILE,
                                "plugins": [{"pluginRef": s["type"]} for s in scorers]}],
    }
    # JSON is YAML, and the EPP reads its configuration as YAML.
    return json.dumps(config, indent=2, sort_keys=True)


def _epp_role_rules(release):
    # The release's own grants, and the preview pools beside them as v1.0.0 granted: harmless to an EPP that
    # watches the v1 group, and what an operator pointing it back at the preview pool would need.
    alpha_resources = list(releases.facts(release).epp_alpha_resources)
    if api.ALPHA_POOL.plural not in alpha_resources:
        alpha_resources.append(api.ALPHA_POOL.plural)
    return [
        {"apiGroups": [api.ALPHA_GROUP], "resources": alpha_resources, "verbs": READ_VERBS},
        {"apiGroups": [api.GA_GROUP], "resources": [api.GA_POOL.plural], "verbs": READ_VERBS},
        {"apiGroups": [api.CORE_GROUP], "resources": [api.POD.plural], "verbs": READ_VERBS},
    ]


def _epp_deployment(pool_name, namespace, epp, release, labels, image=None, flags=None):
    selector = {EPP_SELECTOR_LABEL: epp}
    probe = {"grpc": {"port": api.EPP_HEALTH_PORT, "service": api.EPP_HEALTH_SERVICE},
             "initialDelaySeconds": EPP_PROBE_DELAY_SECONDS, "periodSeconds": EPP_PROBE_PERIOD_SECONDS}
    args = [
        "--" + api.EPP_POOL_NAME_FLAG, pool_name,
        "--" + api.EPP_POOL_NAMESPACE_FLAG, namespace,
        "--" + api.EPP_POOL_GROUP_FLAG, api.GA_GROUP,
        "--grpc-port", str(api.DEFAULT_EPP_PORT),
        "--grpc-health-port", str(api.EPP_HEALTH_PORT),
        "--metrics-port", str(api.EPP_METRICS_PORT),
        "--config-file", "%s/%s" % (EPP_CONFIG_DIR, EPP_CONFIG_FILE),
        "--zap-encoder", "json",
        "--v", EPP_LOG_VERBOSITY,
    ]
    for flag in sorted(flags or {}):
        args += ["--" + flag, str(flags[flag])]
    container = {
        "name": EPP_CONTAINER,
        "image": "%s:%s" % (image or api.EPP_IMAGE, release),
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [{"name": "grpc", "containerPort": api.DEFAULT_EPP_PORT, "protocol": "TCP"},
                  {"name": "grpc-health", "containerPort": api.EPP_HEALTH_PORT, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": api.EPP_METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": probe,
        "readinessProbe": probe,
        "volumeMounts": [{"name": EPP_CONFIG_VOLUME, "mountPath": EPP_CONFIG_DIR}],
    }
    return _object(api.DEPLOYMENT, epp, namespace, labels, spec={
        "replicas": 1,
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": selector},
            "spec": {
                "serviceAccountName": epp,
                "terminationGracePeriodSeconds": EPP_TERMINATION_GRACE_SECONDS,
                "containers": [container],
                "volumes": [{"name": EPP_CONFIG_VOLUME, "configMap": {"name": epp}}],
            },
        },
    })


def _gke_policies(pool_name, namespace, target_port, labels):
    target = {"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "name": pool_name}
    health = {"type": "HTTP", "httpHealthCheck": {"requestPath": MODEL_SERVER_HEALTH_PATH, "port": target_port}}
    return [
        _object(api.HEALTH_CHECK_POLICY, pool_name, namespace, labels,
                spec={"targetRef": target, "default": {"config": health}}),
        _object(api.GCP_BACKEND_POLICY, pool_name, namespace, labels,
                spec={"targetRef": target,
                      "default": {"timeoutSec": GCP_BACKEND_TIMEOUT_SECONDS, "logging": {"enabled": True}}}),
    ]


def ga_manifests(source, release=api.GA_RELEASE, provider=GKE_PROVIDER, name=None, epp_image=None, epp_flags=None):
    """Everything the v1 chart would install, rendered without Helm, in apply order.

    ServiceAccount, namespaced Role and RoleBinding (objectives and pools of both
    groups, pods), a ClusterRole and ClusterRoleBinding for the metrics auth
    reviews (named after the namespace too, so that pools of the same name in two
    namespaces do not share them), the EPP ConfigMap, Service and Deployment
    (v1.0 flags with ``--pool-group``, then ``epp_flags``; the image from ``epp_image``,
    a registry path without tag, or upstream's), the v1 pool pointing at that EPP, and
    with provider gke the HealthCheckPolicy and GCPBackendPolicy for the v1 group. The
    Role grants what the release's EPP reads (releases.RELEASES).
    """
    facts = pool_facts(source)
    name = name or ga_release_name(source)
    namespace = facts.namespace
    epp = epp_name(name)
    cluster_wide = "%s-%s" % (namespace, epp)
    labels = {api.MIGRATION_LABEL: api.MIGRATION_LABEL_VALUE, "app.kubernetes.io/name": epp,
              "app.kubernetes.io/version": release}
    subject = [{"kind": api.SERVICE_ACCOUNT.kind, "name": epp, "namespace": namespace}]

    def role_ref(rtype, role_name):
        return {"apiGroup": rtype.group, "kind": rtype.kind, "name": role_name}

    objects = [
        _object(api.SERVICE_ACCOUNT, epp, namespace, labels),
        _object(api.ROLE, epp, namespace, labels, rules=_epp_role_rules(release)),
        _object(api.ROLE_BINDING, epp, namespace, labels, subjects=subject, roleRef=role_ref(api.ROLE, epp)),
        _object(api.CLUSTER_ROLE, cluster_wide, None, labels,
                rules=[{"apiGroups": [group], "resources": [resource], "verbs": REVIEW_VERBS}
                       for group, resource in AUTH_REVIEW_RULES]),
        _object(api.CLUSTER_ROLE_BINDING, cluster_wide, None, labels, subjects=subject,
                roleRef=role_ref(api.CLUSTER_ROLE, cluster_wide)),
        _object(api.CONFIG_MAP, epp, namespace, labels, data={EPP_CONFIG_FILE: _epp_config()}),
        _object(api.SERVICE, epp, namespace, labels, spec={
            "type": "ClusterIP",
            "selector": {EPP_SELECTOR_LABEL: epp},
            "ports": [{"name": "grpc-ext-proc", "protocol": "TCP", "port": api.DEFAULT_EPP_PORT,
                       "targetPort": api.DEFAULT_EPP_PORT},
                      {"name": "http-metrics", "protocol": "TCP", "port": api.EPP_METRICS_PORT,
                       "targetPort": api.EPP_METRICS_PORT}],
        }),
        _epp_deployment(name, namespace, epp, release, labels, epp_image, epp_flags),
        v1_pool(source, name=name, epp_service=epp),
    ]
    if provider == GKE_PROVIDER:
        objects += _gke_policies(name, namespace, facts.target_ports[0], labels)
    return objects
