#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: inferencepool_detect
short_description: Find every preview Inference Gateway object and tell where each pool's migration stands
version_added: 1.0.0
description:
  - Reports every object of the preview API (C(inference.networking.x-k8s.io/v1alpha2) InferencePool and
    InferenceModel) and of the GA API (C(inference.networking.k8s.io/v1) InferencePool, InferenceObjective,
    InferenceModelRewrite), how they are wired (endpoint picker, Helm release, InferenceModels, HTTPRoute
    rules and weights), and the phase of each pool's migration.
  - Reports the inference CRDs (present, served and stored versions, established, bundle version, who manages
    them) and the CRDs the GA stack still needs, taking into account that GKE at or above
    V(1.34.0-gke.1626000) installs the v1 InferencePool CRD itself.
  - Read-only, always. A missing CRD is a finding, not an error; on a cluster without any of these CRDs the
    module succeeds and reports that no migration is needed.
  - The number of API calls does not depend on the number of namespaces. The module reads the server version,
    the five inference CRDs by name, and lists each resource type once across all namespaces (InferencePools of
    both groups, InferenceModels, InferenceObjectives, InferenceModelRewrites, HTTPRoutes, Services,
    Deployments); everything else is joined in memory.
  - Findings that need a decision before migrating (model-name rewrites, the meaning of C(Standard)
    criticality, cross-namespace references, pools without a route) are returned as Ansible warnings.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  namespaces:
    description:
      - Report only objects in these namespaces. The empty list (the default) means every namespace.
      - The cluster is still listed once per resource type and references are resolved across all
        namespaces, so that a route pointing into a namespace outside this list does not count as an orphan.
    type: list
    elements: str
    default: []
  fail_on_found:
    description:
      - Fail the task when any preview object (alpha InferencePool or InferenceModel) exists in the reported
        namespaces, as Pluto's exit codes do. The message names every such object and the failed result carries
        the whole report.
    type: bool
    default: false
  backup_dir:
    description:
      - The directory earlier runs wrote their backups under (the C(backup_dest) of M(inference_gateway.migration.migration_backup),
        one C(<timestamp>) folder per backup).
      - When an HTTPRoute still sends traffic to a preview InferencePool that no longer exists (a simple migration
        interrupted after it removed the preview stack and before it switched the routes), the newest backup here
        that holds the pool is read, and the pool, as it was then, is reported in RV(removed_alpha_pools) with its
        InferenceModels. The migration can then be finished from it.
      - Nothing is read from here when no route references a missing preview pool.
    type: path
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
  - inference_gateway.migration.cluster.read_only
notes:
  - Needs C(get) on the five inference CustomResourceDefinitions and cluster-wide C(list) on the listed resource
    types. A type whose CRD is not installed is reported as absent, not as an error.
  - "Phases of an alpha pool: V(not_started) (no v1 counterpart), V(side_by_side) (a counterpart exists, no
    route sends it traffic), V(shifting) (the alpha and the v1 pool both get weight somewhere), V(shifted)
    (the v1 pool gets traffic, the alpha pool none). A v1 pool reports its alpha pool's phase, or V(alpha_removed)
    when it carries the C(inference-gateway.migration/migrated-from) annotation and that alpha pool is gone."
  - The v1 counterpart of an alpha pool is the v1 pool in the same namespace annotated as migrated from it, or
    else the first (by name) whose C(selector.matchLabels) equals the alpha pool's selector.
seealso:
  - module: kubernetes.core.k8s_info
"""

EXAMPLES = r"""
- name: Find out whether and where a migration is needed
  inference_gateway.migration.inferencepool_detect:
  register: detect

- name: Show the phase of every preview pool
  ansible.builtin.debug:
    msg: "{{ detect.alpha_pools | map(attribute='phase') | list }}"

- name: Refuse to go on while preview objects exist in namespace team-a
  inference_gateway.migration.inferencepool_detect:
    namespaces: [team-a]
    fail_on_found: true
    kubeconfig: ~/.kube/gke-prod
"""

RETURN = r"""
server_version:
  description: The API server's version, as /version reports it.
  returned: always
  type: dict
  contains:
    git_version:
      description: The full version string.
      type: str
      sample: v1.34.0-gke.1626000
    major:
      description: Major version.
      type: str
      sample: "1"
    minor:
      description: Minor version.
      type: str
      sample: "34"
    platform:
      description: OS and architecture of the server, when it says.
      type: str
      returned: when the server reports it
      sample: linux/amd64
gke_version:
  description: The GKE version parsed from the server version, without the leading C(v); null when not GKE.
  returned: always
  type: str
  sample: 1.34.0-gke.1626000
is_gke:
  description: Whether the server version is a GKE version.
  returned: always
  type: bool
  sample: true
gke_ships_ga_pool_crd:
  description: Whether GKE at this version installs the v1 InferencePool CRD itself (at or above 1.34.0-gke.1626000).
    False when not GKE.
  returned: always
  type: bool
  sample: false
crds:
  description:
    - The inference CRDs, keyed by CRD name, for the alpha InferencePool, InferenceModel, v1 InferencePool,
      InferenceObjective and InferenceModelRewrite.
  returned: always
  type: dict
  sample:
    inferencepools.inference.networking.k8s.io:
      present: true
      served_versions: [v1]
      stored_versions: [v1]
      established: true
      bundle_version: v1.0.0
      managed_by: gke
  contains:
    present:
      description: Whether the CRD exists.
      type: bool
    served_versions:
      description: Versions the CRD serves.
      type: list
      elements: str
    stored_versions:
      description: C(status.storedVersions) of the CRD.
      type: list
      elements: str
    established:
      description: Whether the CRD's C(Established) condition is True.
      type: bool
    bundle_version:
      description: The C(inference.networking.k8s.io/bundle-version) annotation (the upstream release), or null.
      type: str
    managed_by:
      description:
        - V(gke) when the platform reconciles the CRD (C(addonmanager.kubernetes.io/mode) label or a
          C(components.gke.io/) key), V(helm) when a Helm release owns it, otherwise null.
      type: str
crd_plan:
  description: What the GA stack needs done about CRDs.
  returned: always
  type: dict
  sample: {"install": ["inferenceobjectives.inference.networking.x-k8s.io"],
           "keep_managed": ["inferencepools.inference.networking.k8s.io"]}
  contains:
    install:
      description:
        - CRD names still to install, the v1 InferencePool CRD unless present or shipped by GKE, and the
          InferenceObjective CRD unless present.
      type: list
      elements: str
    keep_managed:
      description: Present CRDs the platform manages; never overwrite them.
      type: list
      elements: str
alpha_pools:
  description: Every preview InferencePool in the reported namespaces, sorted by namespace and name.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the pool.
      type: str
      sample: default
    name:
      description: Name of the pool.
      type: str
      sample: vllm-llama3-8b-instruct-preview
    uid:
      description: C(metadata.uid); a pool deleted and created again has another.
      type: str
    created:
      description: C(metadata.creationTimestamp).
      type: str
      sample: "2026-12-04T09:00:00Z"
    last_writer:
      description: The latest writer in C(metadata.managedFields) other than the migration (field manager
        C(inference-gateway-migration)) and status writes, as C(field manager NAME (OPERATION at TIME)); null when none is recorded.
      type: str
      sample: field manager helm (Update at 2026-12-04T09:00:00Z)
    selector:
      description: The pool's pod selector (a plain label map).
      type: dict
      sample: {"app": "vllm-llama3-8b-instruct"}
    target_port:
      description: C(spec.targetPortNumber), the model servers' port.
      type: int
      sample: 8000
    extension_ref:
      description: The endpoint picker reference with the defaults made explicit.
      type: dict
      sample: {"group": "", "kind": "Service", "name": "vllm-llama3-8b-instruct-preview-epp", "port": 9002,
               "failure_mode": "FailClose"}
      contains:
        group:
          description: API group, V("") for core.
          type: str
        kind:
          description: Kind, V(Service) by default.
          type: str
        name:
          description: Name of the endpoint picker Service.
          type: str
        port:
          description: The picker's port, V(9002) when unset and the kind is Service (null for other kinds).
          type: int
        failure_mode:
          description: V(FailClose) (the default) or V(FailOpen).
          type: str
    epp:
      description: The endpoint picker behind the reference.
      type: dict
      sample: {"service_found": true, "deployment": "vllm-llama3-8b-instruct-preview-epp", "available_replicas": 1,
               "ready": true, "image": "registry.k8s.io/gateway-api-inference-extension/epp:v0.3.0",
               "args": ["-poolName", "vllm-llama3-8b-instruct-preview"]}
      contains:
        service_found:
          description: Whether the referenced Service exists.
          type: bool
        deployment:
          description: Name of the Deployment whose pods the Service selects, or null.
          type: str
        available_replicas:
          description: Available replicas of that Deployment.
          type: int
        ready:
          description: Whether the Deployment is Available with at least one available replica.
          type: bool
        image:
          description: Image of the Deployment's first container; its tag is the picker's release when it was
            installed from a GIE chart or manifest.
          type: str
        args:
          description: Arguments of the Deployment's first container (tells the picker's version and flags).
          type: list
          elements: str
    helm_release:
      description: The Helm release owning the pool (C(meta.helm.sh/release-*) annotations) as name and namespace, or null.
      type: dict
      sample: {"name": "vllm-llama3-8b-instruct-preview", "namespace": "default"}
    models:
      description: The InferenceModels whose poolRef points at this pool.
      type: list
      elements: dict
      contains:
        namespace:
          description: Namespace of the InferenceModel (the pool's).
          type: str
        name:
          description: Name of the InferenceModel.
          type: str
          sample: food-review
        uid:
          description: C(metadata.uid).
          type: str
        created:
          description: C(metadata.creationTimestamp).
          type: str
        last_writer:
          description: The latest writer other than the migration, as for the pool; null when none is recorded.
          type: str
        model_name:
          description: C(spec.modelName), the model name clients send.
          type: str
          sample: food-review
        criticality:
          description: C(spec.criticality) (V(Critical), V(Standard), V(Sheddable)), or null when unset (means Standard).
          type: str
          sample: Standard
        target_models:
          description: C(spec.targetModels) as written (name, and weight when set).
          type: list
          elements: dict
          sample: [{"name": "food-review", "weight": 100}]
        rewrites:
          description: Whether serving the model name relies on a rewrite (a target names another model, or several targets).
          type: bool
        pool_ref:
          description: The pool the model points at, as group and name.
          type: dict
    routes:
      description:
        - The HTTPRoutes with rules sending to this pool or to its v1 counterpart, with the weight each side gets per rule.
      type: list
      elements: dict
      sample: [{"namespace": "default", "name": "llm-route", "generation": 1,
                "rules": [{"index": 0, "name": null, "alpha_weight": 50, "ga_weight": 50, "other_weight": 0}]}]
      contains:
        namespace:
          description: Namespace of the HTTPRoute.
          type: str
        name:
          description: Name of the HTTPRoute.
          type: str
        generation:
          description: C(metadata.generation) of the route when read.
          type: int
        hostnames:
          description: C(spec.hostnames) of the route.
          type: list
          elements: str
        parents:
          description: The Gateways the route attaches to, as C(namespace) (the route's when unset), C(name),
            C(section_name) and C(port) of each Gateway parentRef.
          type: list
          elements: dict
        rules:
          description:
            - The rules involved, by index (and name, if the rule has one), with the summed weights of the refs to
              the alpha pool, to its v1 counterpart and to any other backend (a ref without weight counts 1), and
              the rule's C(matches) as written.
          type: list
          elements: dict
    ga_counterpart:
      description: The v1 pool that selects the same pods (namespace, name, helm_release), or null.
      type: dict
      sample: {"namespace": "default", "name": "vllm-llama3-8b-instruct-ga",
               "helm_release": {"name": "vllm-llama3-8b-instruct-ga", "namespace": "default"}}
    phase:
      description: Where the pool's migration stands.
      type: str
      choices: [not_started, side_by_side, shifting, shifted]
      sample: shifting
    weights:
      description: Total weight the alpha pool and its counterpart get over the rules in RV(alpha_pools[].routes).
      type: dict
      sample: {"alpha": 50, "ga": 50}
removed_alpha_pools:
  description:
    - Preview InferencePools that an HTTPRoute still references but that no longer exist, rebuilt from the newest
      backup under O(backup_dir) holding each, in the form of RV(alpha_pools) plus the backup they came from.
      Their C(models) are the InferenceModels of that backup; their C(epp) is what the cluster has now.
    - Empty without O(backup_dir).
  returned: always
  type: list
  elements: dict
  contains:
    backup:
      description: The backup directory the pool was read from.
      type: str
      sample: /home/ops/inference-gateway-migration/backups/20260301T123005Z
inference_models:
  description: Every InferenceModel in the reported namespaces, in the form of RV(alpha_pools[].models), attached or not.
  returned: always
  type: list
  elements: dict
v1_pools:
  description: Every v1 InferencePool in the reported namespaces.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the pool.
      type: str
    name:
      description: Name of the pool.
      type: str
    selector:
      description: C(spec.selector.matchLabels).
      type: dict
    target_ports:
      description: The numbers of C(spec.targetPorts).
      type: list
      elements: int
      sample: [8000]
    endpoint_picker_ref:
      description: C(spec.endpointPickerRef) in the shape of RV(alpha_pools[].extension_ref), port null when unset; null without one.
      type: dict
    helm_release:
      description: The owning Helm release as name and namespace, or null.
      type: dict
    migrated_from:
      description: The C(inference-gateway.migration/migrated-from) annotation (C(namespace/name) of the alpha pool), or null.
      type: str
      sample: default/vllm-llama3-8b-instruct-preview
    epp:
      description: The endpoint picker behind the reference, as in RV(alpha_pools[].epp).
      type: dict
    routes:
      description: As in RV(alpha_pools[].routes), for the pair this pool belongs to.
      type: list
      elements: dict
    models:
      description: The InferenceObjectives of the pool, as in RV(objectives); a gate probes the pool with a model
        name one of them keeps.
      type: list
      elements: dict
    phase:
      description: The phase of its alpha counterpart, V(alpha_removed) when the alpha pool it was migrated from is gone, else null.
      type: str
      choices: [side_by_side, shifting, shifted, alpha_removed]
objectives:
  description: Every InferenceObjective in the reported namespaces.
  returned: always
  type: list
  elements: dict
  sample: [{"namespace": "default", "name": "food-review", "priority": 1, "model_name": "food-review",
            "pool_ref": {"group": "inference.networking.k8s.io", "name": "vllm-llama3-8b-instruct-ga"}}]
  contains:
    namespace:
      description: Namespace.
      type: str
    name:
      description: Name (the value of the C(x-gateway-inference-objective) header).
      type: str
    priority:
      description: C(spec.priority), or null when unset (the picker treats it as 0).
      type: int
    model_name:
      description:
        - The model name of the InferenceModel the objective was made from (annotation
          C(inference-gateway.migration/model-name)); null for an objective the migration did not make.
      type: str
    pool_ref:
      description: The pool, as group (the GA group when omitted) and name.
      type: dict
model_rewrites:
  description: Every InferenceModelRewrite in the reported namespaces (empty when the CRD is not installed).
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace.
      type: str
    name:
      description: Name.
      type: str
    pool_ref:
      description: The pool, as group and name.
      type: dict
    rules:
      description: C(spec.rules) as written; their target list is spelled as in RV(model_rewrite_targets_field).
      type: list
      elements: dict
model_rewrite_targets_field:
  description:
    - How the installed InferenceModelRewrite CRD names a rule's targets, V(split) (v1.2) or V(targets) (v1.3 on);
      null when the CRD is absent or its schema does not say.
  returned: always
  type: str
  sample: targets
orphans:
  description: References to pools that do not exist.
  returned: always
  type: dict
  contains:
    models:
      description: InferenceModels (in the form of RV(alpha_pools[].models)) whose pool is missing.
      type: list
      elements: dict
    routes:
      description: HTTPRoute backendRefs to a missing InferencePool of either group.
      type: list
      elements: dict
      sample: [{"namespace": "default", "name": "llm-route", "rule": 0,
                "backend": {"group": "inference.networking.x-k8s.io", "kind": "InferencePool", "namespace": "default",
                            "name": "vllm-llama3-8b-instruct-preview", "weight": 0}}]
managed_objects:
  description:
    - Every object the migration of a reported preview pool writes or deletes (the pool, its InferenceModels, the
      HTTPRoutes with a backendRef to it, its endpoint picker's Service and Deployment) that something else
      manages too, with who and what to do first. The preflight refuses to migrate such a pool until each manager
      is acknowledged (C(migration_accept_managed_objects)).
    - "Rules: V(argocd) for the annotation C(argocd.argoproj.io/tracking-id), or the label C(app.kubernetes.io/instance)
      on an object without Helm's C(meta.helm.sh/release-name) annotation (Helm charts set that label too);
      V(flux) for the labels C(kustomize.toolkit.fluxcd.io/name) (a Kustomization) or C(helm.toolkit.fluxcd.io/name)
      (a HelmRelease); V(owner) for any ownerReference."
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "HTTPRoute", "namespace": "default", "name": "llm-route",
            "pools": ["default/vllm-llama3-8b-instruct-preview"],
            "managers": [{"name": "argocd", "by": "Argo CD Application inference",
                          "evidence": "annotation argocd.argoproj.io/tracking-id=inference:gateway.networking.k8s.io/HTTPRoute:default/llm-route",
                          "fix": "disable automated sync and self-heal of Argo CD Application inference ..."}]}]
  contains:
    kind:
      description: Kind of the object.
      type: str
    namespace:
      description: Namespace of the object.
      type: str
    name:
      description: Name of the object.
      type: str
    pools:
      description: The preview pools (C(namespace/name)) whose migration touches it.
      type: list
      elements: str
    managers:
      description: Who manages it, each with V(argocd), V(flux) or V(owner) as C(name), C(by) (the Application,
        Kustomization, HelmRelease or owner), C(evidence) (the label, annotation or ownerReference) and C(fix).
      type: list
      elements: dict
last_applied:
  description:
    - Objects the migration touches whose C(kubectl.kubernetes.io/last-applied-configuration) (left by client-side
      C(kubectl apply)) names a preview pool. Their source manifests must change to the v1 API (or, for preview
      objects, be deleted), or the next C(kubectl apply) of them undoes the migration.
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "HTTPRoute", "namespace": "default", "name": "llm-route",
            "pools": ["default/vllm-llama3-8b-instruct-preview"], "names": ["default/vllm-llama3-8b-instruct-preview"],
            "fix": "change its source manifest to the v1 InferencePool ..."}]
  contains:
    kind:
      description: Kind of the object.
      type: str
    namespace:
      description: Namespace of the object.
      type: str
    name:
      description: Name of the object.
      type: str
    pools:
      description: The preview pools (C(namespace/name)) whose migration touches it.
      type: list
      elements: str
    names:
      description: The preview pools (C(namespace/name)) the last applied manifest names.
      type: list
      elements: str
    fix:
      description: What to do about its source manifest.
      type: str
migration_needed:
  description:
    - Whether any preview InferencePool or InferenceModel exists in the reported namespaces, or an HTTPRoute
      there still sends traffic to a preview InferencePool that is gone.
  returned: always
  type: bool
  sample: true
summary:
  description: Counts over the report.
  returned: always
  type: dict
  sample: {"alpha_pools": 1, "removed_alpha_pools": 0, "inference_models": 2, "v1_pools": 0, "objectives": 0, "model_rewrites": 0,
           "routes_to_alpha": 1, "orphan_models": 0, "orphan_route_refs": 0, "managed_objects": 0, "last_applied": 1, "warnings": 1,
           "phases": {"not_started": 1, "side_by_side": 0, "shifting": 0, "shifted": 0, "alpha_removed": 0}}
  contains:
    alpha_pools:
      description: Number of preview pools.
      type: int
    removed_alpha_pools:
      description: Number of preview pools rebuilt from a backup (RV(removed_alpha_pools)).
      type: int
    inference_models:
      description: Number of InferenceModels.
      type: int
    v1_pools:
      description: Number of v1 pools.
      type: int
    objectives:
      description: Number of InferenceObjectives.
      type: int
    model_rewrites:
      description: Number of InferenceModelRewrites.
      type: int
    routes_to_alpha:
      description: Number of HTTPRoutes with a backendRef into the preview API group.
      type: int
    managed_objects:
      description: Number of entries in RV(managed_objects).
      type: int
    last_applied:
      description: Number of entries in RV(last_applied).
      type: int
    orphan_models:
      description: Number of InferenceModels whose pool is missing.
      type: int
    orphan_route_refs:
      description: Number of backendRefs to missing pools.
      type: int
    warnings:
      description: Number of detection warnings.
      type: int
    phases:
      description: Number of pools per phase (alpha pools, plus v1 pools for V(alpha_removed)).
      type: dict
warnings:
  description:
    - The findings that need a decision, one string each. InferenceModels relying on a model-name rewrite or a
      weighted split (v1.0 has no CRD for them, so clients sending that name would get 404 unless something rewrites
      it); Standard or unset criticality (shed under saturation in v0.5, never shed at v1 priority >= 0);
      cross-namespace references; pools that no HTTPRoute sends traffic to; routes that send traffic to a preview
      pool that is gone.
    - They are emitted as Ansible warnings, so the key is absent when there are none; read it with
      C(default([])).
  returned: when there is at least one
  type: list
  elements: str
  sample: ["InferencePool default/vllm-llama3-8b-instruct-preview has no HTTPRoute sending it traffic"]
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import detect_summary, inventory
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    namespaces=dict(type="list", elements="str", default=[]),
    fail_on_found=dict(type="bool", default=False),
    backup_dir=dict(type="path"),
)


def detect(module, cluster):
    result = inventory.detect(cluster, module.params["namespaces"], module.params["backup_dir"])
    # Ansible reserves the `warnings` result key for module.warn(); passing it to exit_json is deprecated.
    for warning in result.pop("warnings"):
        module.warn(warning)
    if module.params["fail_on_found"]:
        detect_summary.refuse_preview_objects(result)
    return dict(result, changed=False)


def main():
    run_module(OPTIONS, detect)


if __name__ == "__main__":
    main()
