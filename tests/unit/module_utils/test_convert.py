"""The preview-to-GA conversions, row by row of the mapping table (gie-api.md §3, §4, §5, §9)."""

import copy
import json

import pytest
import yaml

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, convert, convert_models, epp_manifests
from ansible_collections.inference_gateway.migration.plugins.module_utils import plan as planning
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from support import ALPHA, ALPHA_EPP, BASE_MODEL, MODEL_SERVER_LABELS, NAMESPACE

HELM_ANNOTATIONS = {
    api.HELM_RELEASE_NAME_ANNOTATION: ALPHA,
    api.HELM_RELEASE_NAMESPACE_ANNOTATION: NAMESPACE,
}


def alpha_pool(**spec_changes):
    """The alpha pool as the v0.3.0 chart renders it, plus a user label and annotation."""
    pool = {
        "apiVersion": api.ALPHA_POOL.api_version,
        "kind": api.ALPHA_POOL.kind,
        "metadata": {
            "name": ALPHA,
            "namespace": NAMESPACE,
            "uid": "1234",
            "resourceVersion": "99",
            "labels": {"app.kubernetes.io/name": ALPHA_EPP, "team": "llm"},
            "annotations": dict(HELM_ANNOTATIONS, **{"example.com/owner": "ml-platform"}),
        },
        "spec": {
            "selector": dict(MODEL_SERVER_LABELS, tier="gpu"),
            "targetPortNumber": 8000,
            "extensionRef": {"name": ALPHA_EPP},
        },
    }
    pool["spec"].update(spec_changes)
    return pool


def detect_entry(**changes):
    entry = {
        "namespace": NAMESPACE,
        "name": ALPHA,
        "selector": dict(MODEL_SERVER_LABELS),
        "target_port": 8000,
        "extension_ref": {"group": "", "kind": "Service", "name": ALPHA_EPP,
                          "port": 9002, "failure_mode": "FailClose"},
        "helm_release": {"name": ALPHA, "namespace": NAMESPACE},
        "models": [
            {"name": "food-review", "model_name": "food-review", "criticality": "Standard",
             "target_models": [{"name": "food-review", "weight": 100}], "rewrites": False},
            {"name": "base-model", "model_name": BASE_MODEL, "criticality": "Critical",
             "target_models": [], "rewrites": False},
        ],
        "ga_counterpart": None,
        "phase": "not_started",
    }
    entry.update(changes)
    return entry


def inference_model(name="food-review", model_name="food-review", criticality="Standard", targets=None,
                    namespace=NAMESPACE):
    spec = {"modelName": model_name, "poolRef": {"name": ALPHA}}
    if criticality is not None:
        spec["criticality"] = criticality
    if targets is not None:
        spec["targetModels"] = targets
    return {"apiVersion": api.INFERENCE_MODEL.api_version, "kind": api.INFERENCE_MODEL.kind,
            "metadata": {"name": name, "namespace": namespace, "annotations": dict(HELM_ANNOTATIONS)},
            "spec": spec}


# --- v1 pool: the mapping table -------------------------------------------------------


def test_selector_becomes_match_labels_whole():
    assert convert.v1_pool(alpha_pool())["spec"]["selector"] == {
        "matchLabels": {"app": "vllm-llama3-8b-instruct", "tier": "gpu"}}


def test_target_port_number_becomes_target_ports_list():
    assert convert.v1_pool(alpha_pool(targetPortNumber=8080))["spec"]["targetPorts"] == [{"number": 8080}]


def test_extension_ref_becomes_endpoint_picker_ref_with_group_kind_name():
    pool = alpha_pool(extensionRef={"group": "", "kind": "Service", "name": "my-epp", "portNumber": 9102})
    ref = convert.v1_pool(pool)["spec"]["endpointPickerRef"]
    assert (ref["group"], ref["kind"], ref["name"]) == ("", "Service", "my-epp")


def test_port_number_becomes_port_number_object():
    pool = alpha_pool(extensionRef={"name": "my-epp", "portNumber": 9102})
    assert convert.v1_pool(pool)["spec"]["endpointPickerRef"]["port"] == {"number": 9102}


def test_missing_port_number_becomes_explicit_9002():
    # The v1 CRD's CEL rule rejects a Service reference without a port.
    assert convert.v1_pool(alpha_pool())["spec"]["endpointPickerRef"]["port"] == {"number": 9002}


def test_failure_mode_is_kept():
    pool = alpha_pool(extensionRef={"name": "my-epp", "failureMode": "FailOpen"})
    assert convert.v1_pool(pool)["spec"]["endpointPickerRef"]["failureMode"] == "FailOpen"


def test_missing_failure_mode_is_the_default_fail_close():
    assert convert.v1_pool(alpha_pool())["spec"]["endpointPickerRef"]["failureMode"] == "FailClose"


def test_api_version_and_kind_are_the_v1_pool():
    pool = convert.v1_pool(alpha_pool())
    assert (pool["apiVersion"], pool["kind"]) == (api.GA_POOL.api_version, "InferencePool")


def test_metadata_keeps_user_marks_drops_tool_marks_and_adds_migration_marks():
    metadata = convert.v1_pool(alpha_pool())["metadata"]
    assert metadata["labels"] == {"team": "llm", api.MIGRATION_LABEL: api.MIGRATION_LABEL_VALUE}
    assert metadata["annotations"] == {"example.com/owner": "ml-platform",
                                       api.MIGRATED_FROM_ANNOTATION: "default/vllm-llama3-8b-instruct-preview"}
    assert set(metadata) == {"name", "namespace", "labels", "annotations"}


def test_name_is_kept_unless_given():
    assert convert.v1_pool(alpha_pool())["metadata"]["name"] == "vllm-llama3-8b-instruct-preview"
    assert convert.v1_pool(alpha_pool(), name="x-ga")["metadata"]["name"] == "x-ga"


def test_epp_service_points_the_pool_at_a_new_picker_on_the_default_port():
    pool = alpha_pool(extensionRef={"name": "old-epp", "portNumber": 9102, "failureMode": "FailOpen"})
    ref = convert.v1_pool(pool, epp_service="new-epp")["spec"]["endpointPickerRef"]
    assert ref == {"group": "", "kind": "Service", "name": "new-epp", "port": {"number": 9002},
                   "failureMode": "FailOpen"}


def test_detect_entry_converts_like_the_object():
    from_object = convert.v1_pool(alpha_pool(selector={"app": "vllm-llama3-8b-instruct"}))
    from_detect = convert.v1_pool(detect_entry())
    assert from_detect["spec"] == from_object["spec"]
    assert from_detect["metadata"]["annotations"][api.MIGRATED_FROM_ANNOTATION] == \
        "default/vllm-llama3-8b-instruct-preview"


def test_status_is_dropped_unless_asked_for():
    pool = alpha_pool()
    pool["status"] = {"parent": [{"parentRef": {"kind": "Gateway", "name": "gw"}, "conditions": []}]}
    assert "status" not in convert.v1_pool(pool)


def test_v05_status_synthetic_parent_and_pending_default_are_dropped():
    pool = alpha_pool()
    pool["status"] = {"parent": [{
        "parentRef": {"kind": "Status", "name": "default"},
        "conditions": [{"type": "Accepted", "status": "Unknown", "reason": "Pending",
                        "message": "Waiting for controller", "lastTransitionTime": "1970-01-01T00:00:00Z"}],
    }]}
    assert "status" not in convert.v1_pool(pool, status=True)
    assert convert.v1_pool_status(pool["status"]) == {}


def test_v05_status_parent_becomes_parents_with_renamed_reason():
    status = {"parent": [
        {"parentRef": {"kind": "Status", "name": "default"}, "conditions": []},
        {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "default"},
         "conditions": [{"type": "Accepted", "status": "False", "reason": "NotSupportedByGateway", "message": "no"},
                        {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": ""}]},
    ]}
    assert convert.v1_pool_status(status) == {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "default"},
        "conditions": [{"type": "Accepted", "status": "False", "reason": "NotSupportedByParent", "message": "no"},
                       {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": ""}],
    }]}


def test_v03_status_object_reference_becomes_parent_reference():
    status = {"parent": [{"parentRef": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                                        "name": "gw", "namespace": "default", "uid": "u"},
                          "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}]}
    parent = convert.v1_pool_status(status)["parents"][0]
    assert parent["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw",
                                   "namespace": "default"}


def test_conversion_applied_twice_changes_nothing():
    pool = alpha_pool(extensionRef={"name": "e", "portNumber": 9102, "failureMode": "FailOpen"})
    pool["status"] = {"parent": [{"parentRef": {"kind": "Gateway", "name": "gw"},
                                  "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}]}
    once = convert.v1_pool(pool, name="x-ga", epp_service="x-ga-epp", status=True)
    assert convert.v1_pool(once, status=True) == once
    assert convert.v1_pool(convert.v1_pool(detect_entry())) == convert.v1_pool(detect_entry())


def test_input_is_not_changed():
    pool = alpha_pool()
    before = copy.deepcopy(pool)
    convert.v1_pool(pool, status=True)
    epp_manifests.ga_manifests(pool)
    assert pool == before


@pytest.mark.parametrize("bad, message", [
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}, "is not an InferencePool"),
    ("default/pool", "expected an InferencePool"),
    (dict(detect_entry(), selector={}), "empty selector"),
    (dict(detect_entry(), target_port=None), "target port None"),
    (dict(detect_entry(), target_port=70000), "target port 70000"),
    (dict(detect_entry(), namespace=None), "needs namespace and name"),
])
def test_bad_pools_are_refused_with_the_reason(bad, message):
    with pytest.raises(MigrationError, match=message):
        convert.v1_pool(bad)


# --- release name ------------------------------------------------------------------


@pytest.mark.parametrize("source, expected", [
    ("vllm-llama3-8b-instruct-preview", "vllm-llama3-8b-instruct-ga"),
    ("my-pool", "my-pool-ga"),
    ("preview", "preview-ga"),
    (alpha_pool(), "vllm-llama3-8b-instruct-ga"),
    (detect_entry(), "vllm-llama3-8b-instruct-ga"),
    (detect_entry(helm_release=None, name="plain-pool"), "plain-pool-ga"),
])
def test_ga_release_name(source, expected):
    assert convert.ga_release_name(source) == expected


def test_ga_release_name_of_a_v1_pool_is_its_name():
    v1 = convert.v1_pool(alpha_pool(), name="vllm-llama3-8b-instruct-ga")
    assert convert.ga_release_name(v1) == "vllm-llama3-8b-instruct-ga"


def test_epp_name_mirrors_the_chart():
    assert epp_manifests.epp_name("vllm-llama3-8b-instruct-ga") == "vllm-llama3-8b-instruct-ga-epp"
    assert epp_manifests.epp_name("A" * 60) == "a" * 40 + "-epp"


# --- Helm values -------------------------------------------------------------------


def test_chart_values_select_the_same_pods_on_the_same_port():
    values = convert.ga_chart_values(alpha_pool(targetPortNumber=8080), provider="gke")
    assert values["inferencePool"] == {
        "modelServers": {"matchLabels": {"app": "vllm-llama3-8b-instruct", "tier": "gpu"}},
        "targetPorts": [{"number": 8080}],
        # the chart's GKE HealthCheckPolicy reads targetPortNumber, not targetPorts
        "targetPortNumber": 8080,
    }
    assert values["provider"] == {"name": "gke"}
    assert values["inferenceExtension"] == {"failureMode": "FailClose"}


def test_chart_values_are_the_same_from_the_v1_pool():
    pool = alpha_pool(extensionRef={"name": "e", "failureMode": "FailOpen"})
    assert convert.ga_chart_values(convert.v1_pool(pool)) == convert.ga_chart_values(pool)


# --- manifests ---------------------------------------------------------------------


def by_kind(objects):
    return dict((o["kind"], o) for o in objects)


def test_manifests_are_the_whole_stack_in_apply_order():
    kinds = [o["kind"] for o in epp_manifests.ga_manifests(detect_entry())]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
                     "Service", "Deployment", "InferencePool", "HealthCheckPolicy", "GCPBackendPolicy"]


def test_manifests_every_object_is_labelled_as_the_migrations():
    for obj in epp_manifests.ga_manifests(detect_entry()):
        assert obj["metadata"]["labels"][api.MIGRATION_LABEL] == api.MIGRATION_LABEL_VALUE, obj["kind"]


def test_manifests_epp_deployment_runs_the_v1_epp_for_the_v1_pool():
    deployment = by_kind(epp_manifests.ga_manifests(detect_entry(namespace="team-a")))["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.k8s.io/gateway-api-inference-extension/epp:v1.0.0"
    args = container["args"]
    flags = dict(zip(args[::2], args[1::2]))
    assert flags["--pool-name"] == "vllm-llama3-8b-instruct-ga"
    assert flags["--pool-namespace"] == "team-a"
    assert flags["--pool-group"] == "inference.networking.k8s.io"
    assert (flags["--grpc-port"], flags["--grpc-health-port"], flags["--metrics-port"]) == ("9002", "9003", "9090")
    assert all(isinstance(a, str) for a in args)
    assert deployment["metadata"]["name"] == "vllm-llama3-8b-instruct-ga-epp"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "vllm-llama3-8b-instruct-ga-epp"
    assert deployment["spec"]["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]


def test_manifests_epp_image_follows_the_release():
    deployment = by_kind(epp_manifests.ga_manifests(detect_entry(), release="v1.0.2"))["Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/epp:v1.0.2")


def test_manifests_epp_config_is_a_loadable_endpoint_picker_config():
    config_map = by_kind(epp_manifests.ga_manifests(detect_entry()))["ConfigMap"]
    config = yaml.safe_load(config_map["data"]["default-plugins.yaml"])
    assert config["kind"] == "EndpointPickerConfig"
    assert [p["pluginRef"] for p in config["schedulingProfiles"][0]["plugins"]] == [p["type"] for p in config["plugins"]]


def test_manifests_service_exposes_grpc_and_metrics_to_the_epp_pods():
    objects = by_kind(epp_manifests.ga_manifests(detect_entry()))
    service = objects["Service"]
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("grpc-ext-proc", 9002),
                                                                          ("http-metrics", 9090)]
    assert service["spec"]["selector"] == objects["Deployment"]["spec"]["template"]["metadata"]["labels"]


def test_manifests_role_lets_the_v1_epp_read_objectives_pools_of_both_groups_and_pods():
    rules = by_kind(epp_manifests.ga_manifests(detect_entry()))["Role"]["rules"]
    granted = set((group, resource, verb) for rule in rules for group in rule["apiGroups"]
                  for resource in rule["resources"] for verb in rule["verbs"])
    for verb in ("get", "list", "watch"):
        assert ("inference.networking.x-k8s.io", "inferenceobjectives", verb) in granted
        assert ("inference.networking.x-k8s.io", "inferencepools", verb) in granted
        assert ("inference.networking.k8s.io", "inferencepools", verb) in granted
        assert ("", "pods", verb) in granted
    assert not any(grant[1] == "inferencemodelrewrites" for grant in granted)


def test_manifests_role_adds_model_rewrites_for_an_epp_that_reads_them():
    rules = by_kind(epp_manifests.ga_manifests(detect_entry(), release="v1.3.0"))["Role"]["rules"]
    assert "inferencemodelrewrites" in rules[0]["resources"]


def test_manifests_cluster_role_reviews_tokens_and_is_bound_to_the_epp():
    objects = by_kind(epp_manifests.ga_manifests(detect_entry()))
    rules = objects["ClusterRole"]["rules"]
    assert {(r["apiGroups"][0], r["resources"][0], tuple(r["verbs"])) for r in rules} == {
        ("authentication.k8s.io", "tokenreviews", ("create",)),
        ("authorization.k8s.io", "subjectaccessreviews", ("create",))}
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vllm-llama3-8b-instruct-ga-epp",
                                    "namespace": "default"}]
    assert objects["RoleBinding"]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                 "name": objects["Role"]["metadata"]["name"]}


def test_manifests_cluster_wide_names_do_not_clash_across_namespaces():
    first = by_kind(epp_manifests.ga_manifests(detect_entry(namespace="team-a")))
    second = by_kind(epp_manifests.ga_manifests(detect_entry(namespace="team-b")))
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        assert first[kind]["metadata"]["name"] != second[kind]["metadata"]["name"]
        assert "namespace" not in first[kind]["metadata"]


def test_manifests_pool_points_at_the_new_epp_and_keeps_failure_mode():
    entry = detect_entry(extension_ref={"name": "old-epp", "port": 9102, "failure_mode": "FailOpen"})
    pool = by_kind(epp_manifests.ga_manifests(entry))["InferencePool"]
    assert pool["metadata"]["name"] == "vllm-llama3-8b-instruct-ga"
    assert pool["spec"]["endpointPickerRef"] == {"group": "", "kind": "Service",
                                                 "name": "vllm-llama3-8b-instruct-ga-epp",
                                                 "port": {"number": 9002}, "failureMode": "FailOpen"}


def test_manifests_gke_policies_target_the_v1_pool_on_its_port():
    objects = by_kind(epp_manifests.ga_manifests(detect_entry(target_port=8080)))
    for kind in ("HealthCheckPolicy", "GCPBackendPolicy"):
        assert objects[kind]["spec"]["targetRef"] == {"group": "inference.networking.k8s.io",
                                                      "kind": "InferencePool", "name": "vllm-llama3-8b-instruct-ga"}
    assert objects["HealthCheckPolicy"]["spec"]["default"]["config"]["httpHealthCheck"]["port"] == 8080


def test_manifests_without_gke_have_no_gke_policies():
    kinds = [o["kind"] for o in epp_manifests.ga_manifests(detect_entry(), provider="none")]
    assert "HealthCheckPolicy" not in kinds and "GCPBackendPolicy" not in kinds


def test_manifests_rendered_twice_are_identical():
    assert json.dumps(epp_manifests.ga_manifests(alpha_pool())) == json.dumps(epp_manifests.ga_manifests(alpha_pool()))


def test_bad_release_is_refused():
    with pytest.raises(MigrationError, match="not a GIE release tag"):
        epp_manifests.ga_manifests(detect_entry(), release="latest")


# --- InferenceModel to InferenceObjective -------------------------------------------


def test_objective_points_at_the_v1_pool_with_the_group_written_out():
    obj = convert_models.objective(inference_model(), "vllm-llama3-8b-instruct-ga")
    assert (obj["apiVersion"], obj["kind"]) == (api.INFERENCE_OBJECTIVE.api_version, "InferenceObjective")
    assert obj["spec"]["poolRef"] == {"group": "inference.networking.k8s.io", "kind": "InferencePool",
                                      "name": "vllm-llama3-8b-instruct-ga"}
    assert obj["metadata"]["name"] == "food-review"
    assert obj["metadata"]["namespace"] == "default"
    assert obj["metadata"]["labels"] == {api.MIGRATION_LABEL: api.MIGRATION_LABEL_VALUE}
    assert obj["metadata"]["annotations"] == {api.MIGRATED_FROM_ANNOTATION: "default/food-review",
                                              api.MODEL_NAME_ANNOTATION: "food-review"}
    assert convert_models.model_facts(obj).model_name == "food-review", "a later run reads the model name back"


@pytest.mark.parametrize("criticality, priority", [("Critical", 2), ("Standard", 1), ("Sheddable", -1)])
def test_default_priority_map(criticality, priority):
    assert convert_models.objective(inference_model(criticality=criticality), "p")["spec"]["priority"] == priority


def test_unset_criticality_sets_no_priority():
    assert "priority" not in convert_models.objective(inference_model(criticality=None), "p")["spec"]


def test_custom_priority_map_and_null_for_no_priority():
    priorities = {"Critical": 10, "Standard": None, "Sheddable": -5}
    assert convert_models.objective(inference_model(criticality="Critical"), "p", priority_map=priorities)["spec"][
        "priority"] == 10
    assert "priority" not in convert_models.objective(inference_model(criticality="Standard"), "p",
                                                      priority_map=priorities)["spec"]


def test_criticality_missing_from_the_map_is_refused_naming_the_model():
    with pytest.raises(MigrationError, match="default/food-review has criticality Sheddable.*add Sheddable"):
        convert_models.objective(inference_model(criticality="Sheddable"), "p", priority_map={"Critical": 2})


@pytest.mark.parametrize("value", ["2", 1.5, True])
def test_non_integer_priorities_are_refused(value):
    with pytest.raises(MigrationError, match="use an integer"):
        convert_models.objective(inference_model(), "p", priority_map={"Standard": value})


def test_objective_name_is_mapped_when_asked():
    obj = convert_models.objective(inference_model(), "p", names={"food-review": "food-review-objective"})
    assert obj["metadata"]["name"] == "food-review-objective"


def test_objective_from_detect_entry_needs_and_uses_the_namespace():
    entry = detect_entry()["models"][1]
    with pytest.raises(MigrationError, match="namespace"):
        convert_models.objective(entry, "p")
    obj = convert_models.objective(entry, "p", namespace="team-a")
    assert (obj["metadata"]["namespace"], obj["metadata"]["name"], obj["spec"]["priority"]) == (
        "team-a", "base-model", 2)
    # detect's entries carry their namespace
    assert convert_models.objective(dict(entry, namespace="team-b"), "p")["metadata"]["namespace"] == "team-b"


def test_objective_applied_twice_changes_nothing():
    once = convert_models.objective(inference_model(criticality="Sheddable"), "p", names={"food-review": "fr"})
    assert convert_models.objective(once, "p", names={"food-review": "fr"}) == once


# --- rewrites ----------------------------------------------------------------------

WEIGHTED = [{"name": "food-review-1", "weight": 90}, {"name": "food-review-2", "weight": 10}]


def test_no_warning_when_the_only_target_is_the_model_itself():
    assert convert_models.model_warnings(inference_model(targets=[{"name": "food-review", "weight": 100}])) == []
    assert convert_models.model_warnings(inference_model()) == []


@pytest.mark.parametrize("targets", [[{"name": "food-review-v2"}], WEIGHTED])
def test_rewrite_and_weighted_targets_warn_naming_the_v1_alternatives(targets):
    [warning] = convert_models.model_warnings(inference_model(targets=targets))
    assert "default/food-review" in warning
    for alternative in ("x-gateway-model-name-rewrite", "HTTPRoute backendRef weights", "BBR",
                        "InferenceModelRewrite", "v1.3.0"):
        assert alternative in warning


def test_weighted_warning_from_detect_entry():
    entry = {"name": "fr", "model_name": "food-review", "criticality": None, "target_models": WEIGHTED}
    [warning] = convert_models.model_warnings(entry, namespace="default")
    assert "food-review-1 (weight 90)" in warning


def test_model_rewrite_v13_spelling_targets():
    rewrite = convert_models.model_rewrite(inference_model(targets=WEIGHTED), "pool-ga")
    assert (rewrite["apiVersion"], rewrite["kind"]) == (api.INFERENCE_MODEL_REWRITE.api_version,
                                                        "InferenceModelRewrite")
    assert rewrite["metadata"]["name"] == "food-review"
    assert rewrite["spec"] == {
        "poolRef": {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "pool-ga"},
        "rules": [{"matches": [{"model": {"type": "Exact", "value": "food-review"}}],
                   "targets": [{"modelRewrite": "food-review-1", "weight": 90},
                               {"modelRewrite": "food-review-2", "weight": 10}]}],
    }


def test_model_rewrite_v12_spelling_split_and_unweighted_targets():
    rewrite = convert_models.model_rewrite(inference_model(targets=[{"name": "food-review-v2"}]), "pool-ga", field="split")
    assert rewrite["spec"]["rules"] == [{"matches": [{"model": {"type": "Exact", "value": "food-review"}}],
                                         "split": [{"modelRewrite": "food-review-v2"}]}]


def test_model_rewrite_is_none_without_a_rewrite():
    assert convert_models.model_rewrite(inference_model(targets=[{"name": "food-review", "weight": 100}]), "p") is None


def test_model_rewrite_applied_twice_changes_nothing_and_respells():
    once = convert_models.model_rewrite(inference_model(targets=WEIGHTED), "p")
    assert convert_models.model_rewrite(once, "p") == once
    respelled = convert_models.model_rewrite(once, "p", field="split")
    assert respelled["spec"]["rules"][0]["split"] == once["spec"]["rules"][0]["targets"]
    assert "targets" not in respelled["spec"]["rules"][0]


def test_model_rewrite_refuses_unknown_field():
    with pytest.raises(MigrationError, match="not one of targets, split"):
        convert_models.model_rewrite(inference_model(targets=WEIGHTED), "p", field="routes")


# --- CRD plan and per-pool plan ------------------------------------------------------


def test_crd_plan_old_gke_installs_both_ga_crds():
    plan = planning.ga_crd_plan({"crd_plan": {"install": [api.GA_POOL.crd_name, api.INFERENCE_OBJECTIVE.crd_name],
                                              "keep_managed": []}})
    assert plan["install"] == sorted([api.GA_POOL.crd_name, api.INFERENCE_OBJECTIVE.crd_name])


def test_crd_plan_new_gke_leaves_the_managed_pool_crd_alone():
    plan = planning.ga_crd_plan({"crd_plan": {"install": [api.INFERENCE_OBJECTIVE.crd_name],
                                              "keep_managed": [api.GA_POOL.crd_name]}})
    assert plan["install"] == [api.INFERENCE_OBJECTIVE.crd_name]
    assert plan["keep_managed"] == [api.GA_POOL.crd_name]


def test_crd_plan_always_ensures_what_the_v1_epp_needs():
    # A re-run after detect found the CRDs present: inference_crds keeps them.
    plan = planning.ga_crd_plan({"crd_plan": {"install": [], "keep_managed": []}})
    assert plan["install"] == sorted(api.PROTECTED_CRDS)


def test_crd_plan_never_installs_alpha_crds():
    with pytest.raises(MigrationError, match="preview stack depends on"):
        planning.ga_crd_plan({"crd_plan": {"install": [api.ALPHA_POOL.crd_name]}})


def test_crd_plan_needs_detect_result():
    with pytest.raises(MigrationError, match="inferencepool_detect"):
        planning.ga_crd_plan({"alpha_pools": []})


def test_plan_helm_mode():
    plan = planning.ga_plan(detect_entry())
    assert (plan["alpha"], plan["v1"], plan["release"], plan["mode"]) == (
        "default/vllm-llama3-8b-instruct-preview", "default/vllm-llama3-8b-instruct-ga",
        "vllm-llama3-8b-instruct-ga", "helm")
    assert plan["chart_values"] == convert.ga_chart_values(detect_entry())
    assert "manifests" not in plan
    assert [(o["metadata"]["name"], o["spec"].get("priority")) for o in plan["objectives"]] == [
        ("food-review", 1), ("base-model", 2)]
    assert plan["epp_deployment"] == {"api_version": "apps/v1", "kind": "Deployment",
                                      "name": "vllm-llama3-8b-instruct-ga-epp", "namespace": "default"}
    patch = plan["v1_pool_patch"]
    assert patch["metadata"]["name"] == "vllm-llama3-8b-instruct-ga"
    assert patch["metadata"]["annotations"][api.MIGRATED_FROM_ANNOTATION] == "default/vllm-llama3-8b-instruct-preview"
    assert patch["spec"] == {"endpointPickerRef": {"failureMode": "FailClose"}}
    assert plan["warnings"] == [] and plan["model_rewrites"] == []


def test_plan_manifests_mode_objects_name_the_same_pool_as_helm_would():
    plan = planning.ga_plan(detect_entry(), mode="manifests", provider="none")
    pool = by_kind(plan["manifests"])["InferencePool"]
    assert "%s/%s" % (pool["metadata"]["namespace"], pool["metadata"]["name"]) == plan["v1"]
    assert "chart_values" not in plan


def test_plan_rewrites_only_when_asked_and_warns_about_an_epp_that_ignores_them():
    entry = detect_entry()
    entry["models"][0]["target_models"] = WEIGHTED
    without = planning.ga_plan(entry)
    assert without["model_rewrites"] == [] and len(without["warnings"]) == 1
    asked = planning.ga_plan(entry, rewrite_field="targets")
    assert [r["metadata"]["name"] for r in asked["model_rewrites"]] == ["food-review"]
    assert any("does not read them" in w for w in asked["warnings"])
    reading = planning.ga_plan(entry, release="v1.3.0", rewrite_field="targets")
    assert not any("does not read them" in w for w in reading["warnings"])


def test_plan_refuses_unknown_mode():
    with pytest.raises(MigrationError, match="neither helm nor manifests"):
        planning.ga_plan(detect_entry(), mode="kustomize")
