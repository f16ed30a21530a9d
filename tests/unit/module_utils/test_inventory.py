import copy
import json

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import (
    api, backup_files, detect_summary, inventory, inventory_crds, inventory_routes, objects, refs,
)
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from memory_cluster import MemoryCluster
from support import ALPHA, BASE_MODEL, GA, GATEWAY_NAME, MODEL_SERVER_LABELS, NAMESPACE, ROUTE

OLD_GKE = {"gitVersion": "v1.34.0-gke.1500000", "major": "1", "minor": "34", "platform": "linux/amd64"}
NEW_GKE = {"gitVersion": "v1.34.1-gke.1829001", "major": "1", "minor": "34", "platform": "linux/amd64"}


# --- fixtures: objects as the API server returns them -----------------------------------------


def meta(name, namespace=NAMESPACE, labels=None, annotations=None):
    metadata = {"name": name, "namespace": namespace, "generation": 1}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def helm_annotations(release, namespace=NAMESPACE):
    return {api.HELM_RELEASE_NAME_ANNOTATION: release, api.HELM_RELEASE_NAMESPACE_ANNOTATION: namespace}


def alpha_pool(name=ALPHA, namespace=NAMESPACE, selector=None, extension_ref=None, release=True):
    return {
        "apiVersion": api.ALPHA_POOL.api_version, "kind": "InferencePool",
        "metadata": meta(name, namespace, annotations=helm_annotations(name, namespace) if release else None),
        "spec": {"selector": dict(selector or MODEL_SERVER_LABELS), "targetPortNumber": 8000,
                 "extensionRef": extension_ref if extension_ref is not None else {"name": name + "-epp"}},
    }


def ga_pool(name=GA, namespace=NAMESPACE, selector=None, migrated_from=None):
    annotations = dict(helm_annotations(name, namespace))
    if migrated_from:
        annotations[api.MIGRATED_FROM_ANNOTATION] = migrated_from
    return {
        "apiVersion": api.GA_POOL.api_version, "kind": "InferencePool",
        "metadata": meta(name, namespace, annotations=annotations),
        "spec": {"selector": {"matchLabels": dict(selector or MODEL_SERVER_LABELS)}, "targetPorts": [{"number": 8000}],
                 "endpointPickerRef": {"name": name + "-epp", "port": {"number": 9002}}},
    }


def model(name, model_name, pool=ALPHA, criticality=None, target_models=None, namespace=NAMESPACE, group=None):
    spec = {"modelName": model_name, "poolRef": {"name": pool}}
    if group:
        spec["poolRef"]["group"] = group
    if criticality:
        spec["criticality"] = criticality
    if target_models is not None:
        spec["targetModels"] = target_models
    return {"apiVersion": api.INFERENCE_MODEL.api_version, "kind": "InferenceModel",
            "metadata": meta(name, namespace), "spec": spec}


def pool_ref(group, name, weight=None, namespace=None):
    ref = {"group": group, "kind": "InferencePool", "name": name}
    if weight is not None:
        ref["weight"] = weight
    if namespace:
        ref["namespace"] = namespace
    return ref


def route(*rules, name=ROUTE, namespace=NAMESPACE):
    return {"apiVersion": api.HTTP_ROUTE.api_version, "kind": "HTTPRoute",
            "metadata": meta(name, namespace),
            "spec": {"parentRefs": [{"name": GATEWAY_NAME}],
                     "rules": [{"backendRefs": list(refs)} for refs in rules]}}


def service(name, selector, namespace=NAMESPACE):
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace),
            "spec": {"selector": dict(selector), "ports": [{"name": "grpc-ext-proc", "port": 9002}]}}


EPP_IMAGE = "registry.k8s.io/gateway-api-inference-extension/epp:v0.3.0"


def deployment(name, labels, available=1, namespace=NAMESPACE, args=("-poolName", ALPHA)):
    conditions = [{"type": "Available", "status": "True" if available else "False"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, namespace),
            "spec": {"replicas": 1, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "epp", "image": EPP_IMAGE, "args": list(args)}]}}},
            "status": {"availableReplicas": available, "conditions": conditions}}


def epp_objects(pool_name, available=1):
    labels = {"inferencepool": pool_name + "-epp"}
    return [service(pool_name + "-epp", labels)], [deployment(pool_name + "-epp", labels, available)]


def crd(rtype, labels=None, annotations=None, versions=None):
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": rtype.crd_name, "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"group": rtype.group, "names": {"kind": rtype.kind, "plural": rtype.plural},
                 "versions": versions or [{"name": rtype.version, "served": True, "storage": True}]},
        "status": {"storedVersions": [rtype.version],
                   "conditions": [{"type": "Established", "status": "True"}]},
    }


def alpha_crds():
    return {api.ALPHA_POOL.crd_name: crd(api.ALPHA_POOL), api.INFERENCE_MODEL.crd_name: crd(api.INFERENCE_MODEL)}


def snapshot(version=None, crds=None, **lists):
    all_crds = dict((rtype.crd_name, None) for rtype in api.INFERENCE_CRDS)
    all_crds.update(crds or {})
    listed = dict((field, []) for field, _rtype in inventory.LISTED_TYPES)
    listed.update(lists)
    return inventory.Snapshot(server_version=version or OLD_GKE, crds=all_crds, **listed)


def alpha_basic(extra_ga_pools=(), routes=None, **overrides):
    """The sandbox's alpha-basic scenario, optionally with a v1 pool and other routes."""
    services, deployments = epp_objects(ALPHA)
    for pool in extra_ga_pools:
        more_services, more_deployments = epp_objects(pool["metadata"]["name"])
        services += more_services
        deployments += more_deployments
    lists = dict(
        crds=alpha_crds(),
        alpha_pools=[alpha_pool()],
        ga_pools=list(extra_ga_pools),
        models=[model("food-review", "food-review", criticality="Standard",
                      target_models=[{"name": "food-review", "weight": 100}]),
                model("base-model", BASE_MODEL, criticality="Critical")],
        routes=routes if routes is not None else [route([pool_ref(api.ALPHA_GROUP, ALPHA)])],
        services=services,
        deployments=deployments,
    )
    lists.update(overrides)
    return snapshot(**lists)


def migration_at(alpha_weight, ga_weight, alpha_present=True, annotate=True):
    """alpha-basic with a v1 counterpart and one rule weighting the two pools (None = no such ref)."""
    refs = []
    if alpha_weight is not None:
        refs.append(pool_ref(api.ALPHA_GROUP, ALPHA, alpha_weight))
    if ga_weight is not None:
        refs.append(pool_ref(api.GA_GROUP, GA, ga_weight))
    v1 = ga_pool(migrated_from="%s/%s" % (NAMESPACE, ALPHA) if annotate else None)
    overrides = {} if alpha_present else {"alpha_pools": [], "models": []}
    return inventory.report(alpha_basic(extra_ga_pools=[v1], routes=[route(refs)], **overrides))


# --- the alpha-basic picture ------------------------------------------------------------------


def test_alpha_basic_reports_one_pool_with_its_models_route_release_and_ready_epp():
    result = inventory.report(alpha_basic())
    assert result["migration_needed"] is True
    [pool] = result["alpha_pools"]
    assert (pool["namespace"], pool["name"], pool["selector"], pool["target_port"]) == (NAMESPACE, ALPHA, MODEL_SERVER_LABELS, 8000)
    assert pool["helm_release"] == {"name": ALPHA, "namespace": NAMESPACE}
    assert [m["name"] for m in pool["models"]] == ["base-model", "food-review"]
    assert pool["models"][1] == {
        "uid": None, "created": None, "last_writer": None,  # the snapshot's objects carry no such metadata
        "namespace": NAMESPACE, "name": "food-review", "model_name": "food-review", "criticality": "Standard",
        "target_models": [{"name": "food-review", "weight": 100}], "rewrites": False,
        "pool_ref": {"group": api.ALPHA_GROUP, "name": ALPHA},
    }
    assert pool["routes"] == [{
        "namespace": NAMESPACE, "name": ROUTE, "generation": 1, "hostnames": [],
        "parents": [{"namespace": NAMESPACE, "name": GATEWAY_NAME, "section_name": None, "port": None}],
        "rules": [{"index": 0, "name": None, "alpha_weight": 1, "ga_weight": 0, "other_weight": 0, "matches": []}]}]
    assert pool["epp"] == {"service_found": True, "deployment": ALPHA + "-epp", "available_replicas": 1,
                           "ready": True, "image": EPP_IMAGE, "args": ["-poolName", ALPHA]}
    assert pool["ga_counterpart"] is None
    assert (pool["phase"], pool["weights"]) == ("not_started", {"alpha": 1, "ga": 0})
    assert result["orphans"] == {"models": [], "routes": []}
    assert result["summary"]["alpha_pools"] == 1 and result["summary"]["inference_models"] == 2
    assert result["summary"]["routes_to_alpha"] == 1
    assert result["summary"]["phases"]["not_started"] == 1


def test_empty_cluster_needs_no_migration_and_plans_both_v1_crds():
    result = inventory.report(snapshot(version={"gitVersion": "v1.34.10", "major": "1", "minor": "34"}))
    assert result["migration_needed"] is False
    assert result["alpha_pools"] == result["v1_pools"] == result["inference_models"] == []
    assert all(not c["present"] for c in result["crds"].values())
    assert sorted(result["crds"]) == sorted(r.crd_name for r in api.INFERENCE_CRDS)
    assert result["crd_plan"] == {"install": [api.GA_POOL.crd_name, api.INFERENCE_OBJECTIVE.crd_name],
                                  "keep_managed": []}
    assert (result["is_gke"], result["gke_version"], result["gke_ships_ga_pool_crd"]) == (False, None, False)
    assert result["server_version"] == {"git_version": "v1.34.10", "major": "1", "minor": "34"}
    assert result["warnings"] == [] and result["model_rewrite_targets_field"] is None
    detect_summary.refuse_preview_objects(result)  # nothing found: no refusal


# --- backendRef defaults ------------------------------------------------------------------------


def test_missing_weight_counts_as_one_and_missing_group_or_kind_is_not_the_pool():
    rules = [
        [{"group": api.ALPHA_GROUP, "kind": "InferencePool", "name": ALPHA}],  # weight omitted: 1
        [{"name": ALPHA, "weight": 5}, {"group": api.ALPHA_GROUP, "kind": "InferencePool", "name": ALPHA, "weight": 2}],
        [{"group": api.ALPHA_GROUP, "name": ALPHA, "weight": 7}],  # kind omitted: a Service, not the pool
    ]
    result = inventory.report(alpha_basic(routes=[route(*rules)]))
    [used] = result["alpha_pools"][0]["routes"]
    assert used["rules"] == [
        {"index": 0, "name": None, "alpha_weight": 1, "ga_weight": 0, "other_weight": 0, "matches": []},
        # no group means core Service: the same name is another backend
        {"index": 1, "name": None, "alpha_weight": 2, "ga_weight": 0, "other_weight": 5, "matches": []},
    ]
    assert result["alpha_pools"][0]["weights"] == {"alpha": 3, "ga": 0}
    assert result["orphans"]["routes"] == []  # Services are not InferencePools, missing or not


def test_rule_names_are_reported():
    named = route([pool_ref(api.ALPHA_GROUP, ALPHA)])
    named["spec"]["rules"][0]["name"] = "completions"
    result = inventory.report(alpha_basic(routes=[named]))
    assert result["alpha_pools"][0]["routes"][0]["rules"][0]["name"] == "completions"


def test_extension_ref_defaults_are_made_explicit():
    assert objects.extension_ref(alpha_pool(extension_ref={"name": "epp"})) == {
        "group": "", "kind": "Service", "name": "epp", "port": 9002, "failure_mode": "FailClose"}
    explicit = {"group": "", "kind": "Service", "name": "epp", "portNumber": 9100, "failureMode": "FailOpen"}
    assert objects.extension_ref(alpha_pool(extension_ref=explicit)) == {
        "group": "", "kind": "Service", "name": "epp", "port": 9100, "failure_mode": "FailOpen"}
    # 9002 is what implementations infer for a Service only
    other_kind = objects.extension_ref(alpha_pool(extension_ref={"group": "x.io", "kind": "Picker", "name": "p"}))
    assert other_kind["port"] is None and other_kind["kind"] == "Picker"


def test_endpoint_picker_ref_keeps_the_explicit_port_and_defaults_the_rest():
    assert objects.endpoint_picker_ref(ga_pool()) == {
        "group": "", "kind": "Service", "name": GA + "-epp", "port": 9002, "failure_mode": "FailClose"}
    without = ga_pool()
    del without["spec"]["endpointPickerRef"]
    assert objects.endpoint_picker_ref(without) is None


# --- phases -------------------------------------------------------------------------------------


def phases(result):
    return [p["phase"] for p in result["alpha_pools"]], [p["phase"] for p in result["v1_pools"]]


def test_no_counterpart_is_not_started_even_when_another_v1_pool_gets_traffic():
    unrelated = ga_pool(name="other-ga", selector={"app": "other"})
    result = inventory.report(alpha_basic(
        extra_ga_pools=[unrelated],
        routes=[route([pool_ref(api.ALPHA_GROUP, ALPHA, 50), pool_ref(api.GA_GROUP, "other-ga", 50)])]))
    assert phases(result) == (["not_started"], [None])
    assert result["alpha_pools"][0]["ga_counterpart"] is None


def test_counterpart_without_traffic_is_side_by_side():
    result = inventory.report(alpha_basic(extra_ga_pools=[ga_pool()]))
    assert phases(result) == (["side_by_side"], ["side_by_side"])
    pool = result["alpha_pools"][0]
    assert pool["ga_counterpart"] == {"namespace": NAMESPACE, "name": GA, "helm_release": {"name": GA, "namespace": NAMESPACE}}
    # the v1 pool shares the alpha pool's routes, so it is not reported as unrouted
    assert result["v1_pools"][0]["routes"] == pool["routes"]
    assert not any("has no HTTPRoute" in w for w in result["warnings"])


def test_v1_ref_at_weight_zero_is_still_side_by_side():
    result = migration_at(1, 0)
    assert phases(result) == (["side_by_side"], ["side_by_side"])
    assert result["alpha_pools"][0]["weights"] == {"alpha": 1, "ga": 0}


def test_both_pools_weighted_is_shifting():
    result = migration_at(50, 50)
    assert phases(result) == (["shifting"], ["shifting"])
    assert result["alpha_pools"][0]["routes"][0]["rules"] == [
        {"index": 0, "name": None, "alpha_weight": 50, "ga_weight": 50, "other_weight": 0, "matches": []}]
    assert result["summary"]["phases"]["shifting"] == 1


def test_shifting_counts_weights_across_rules():
    split = route([pool_ref(api.ALPHA_GROUP, ALPHA, 1)], [pool_ref(api.GA_GROUP, GA, 1)])
    result = inventory.report(alpha_basic(extra_ga_pools=[ga_pool()], routes=[split]))
    assert phases(result) == (["shifting"], ["shifting"])
    assert [r["index"] for r in result["alpha_pools"][0]["routes"][0]["rules"]] == [0, 1]


def test_alpha_at_weight_zero_is_shifted():
    result = migration_at(0, 100)
    assert phases(result) == (["shifted"], ["shifted"])
    assert result["alpha_pools"][0]["weights"] == {"alpha": 0, "ga": 100}


def test_alpha_ref_removed_is_shifted():
    result = migration_at(None, 100)
    assert phases(result) == (["shifted"], ["shifted"])
    # the alpha pool is reached through no rule of its own any more, yet still shows the pair's route
    assert result["alpha_pools"][0]["routes"][0]["rules"][0]["ga_weight"] == 100


def test_deleted_alpha_pool_is_alpha_removed_on_the_annotated_v1_pool():
    result = migration_at(0, 100, alpha_present=False)
    assert phases(result) == ([], ["alpha_removed"])
    [v1] = result["v1_pools"]
    assert v1["migrated_from"] == "%s/%s" % (NAMESPACE, ALPHA)
    assert v1["routes"][0]["rules"] == [
        {"index": 0, "name": None, "alpha_weight": 0, "ga_weight": 100, "other_weight": 0, "matches": []}]
    assert result["migration_needed"] is False
    assert result["summary"]["phases"]["alpha_removed"] == 1
    # the leftover weight-0 ref to the deleted pool is an orphan
    assert result["orphans"]["routes"] == [{"namespace": NAMESPACE, "name": ROUTE, "rule": 0, "backend": {
        "group": api.ALPHA_GROUP, "kind": "InferencePool", "namespace": NAMESPACE, "name": ALPHA, "weight": 0}}]


def test_v1_pool_without_annotation_has_no_phase_once_the_alpha_pool_is_gone():
    result = migration_at(None, 100, alpha_present=False, annotate=False)
    assert phases(result) == ([], [None])


def test_annotation_pairs_pools_whose_selectors_differ_and_wins_over_an_equal_selector():
    by_selector = ga_pool(name="a-same-pods")
    annotated = ga_pool(name="z-migrated", selector={"app": "relabelled"}, migrated_from="%s/%s" % (NAMESPACE, ALPHA))
    result = inventory.report(alpha_basic(extra_ga_pools=[by_selector, annotated]))
    assert result["alpha_pools"][0]["ga_counterpart"]["name"] == "z-migrated"
    assert [(p["name"], p["phase"]) for p in result["v1_pools"]] == [
        ("a-same-pods", None), ("z-migrated", "side_by_side")]


def test_second_v1_pool_migrated_from_a_live_alpha_pool_has_no_phase():
    source = "%s/%s" % (NAMESPACE, ALPHA)
    result = inventory.report(alpha_basic(extra_ga_pools=[ga_pool(name="a-first", migrated_from=source),
                                                          ga_pool(name="b-second", migrated_from=source)]))
    assert result["alpha_pools"][0]["ga_counterpart"]["name"] == "a-first"
    # the preview pool still exists, so the unpaired one is not alpha_removed
    assert [(p["name"], p["phase"]) for p in result["v1_pools"]] == [("a-first", "side_by_side"), ("b-second", None)]


def test_counterpart_must_be_in_the_same_namespace():
    elsewhere = ga_pool(namespace="other")
    result = inventory.report(alpha_basic(extra_ga_pools=[elsewhere]))
    assert result["alpha_pools"][0]["phase"] == "not_started"


def test_pool_phase_table():
    assert inventory_routes.pool_phase(False, {"alpha": 0, "ga": 100}) == "not_started"
    assert inventory_routes.pool_phase(True, {"alpha": 0, "ga": 0}) == "side_by_side"
    assert inventory_routes.pool_phase(True, {"alpha": 1, "ga": 1}) == "shifting"
    assert inventory_routes.pool_phase(True, {"alpha": 0, "ga": 1}) == "shifted"


# --- warnings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target_models, rewrites", [
    (None, False),
    ([], False),
    ([{"name": "food-review"}], False),
    ([{"name": "food-review", "weight": 100}], False),
    ([{"name": "food-review-v2"}], True),  # renames the model
    ([{"name": "food-review", "weight": 90}, {"name": "food-review-2", "weight": 10}], True),  # splits
    ([{"name": "food-review", "weight": 1}, {"name": "food-review", "weight": 1}], True),
])
def test_rewrite_is_flagged_when_target_models_rename_or_split(target_models, rewrites):
    models = [model("food-review", "food-review", criticality="Critical", target_models=target_models)]
    result = inventory.report(alpha_basic(models=models))
    assert result["alpha_pools"][0]["models"][0]["rewrites"] is rewrites
    rewrite_warnings = [w for w in result["warnings"] if "targetModels" in w]
    assert len(rewrite_warnings) == (1 if rewrites else 0)


def test_rewrite_warning_names_the_model_the_targets_and_the_404():
    models = [model("food-review", "food-review", criticality="Critical",
                    target_models=[{"name": "food-review-1", "weight": 90}, {"name": "food-review-2", "weight": 10}])]
    [warning] = inventory.report(alpha_basic(models=models))["warnings"]
    assert "InferenceModel default/food-review" in warning
    assert "food-review-1:90, food-review-2:10" in warning
    assert "404" in warning and api.MODEL_NAME_REWRITE_HEADER in warning


def test_standard_and_unset_criticality_are_warned_about_but_not_critical():
    models = [model("a", "a", criticality="Standard"), model("b", "b"), model("c", "c", criticality="Critical"),
              model("d", "d", criticality="Sheddable")]
    warnings = [w for w in inventory.report(alpha_basic(models=models))["warnings"] if "criticality" in w]
    assert len(warnings) == 1
    assert "default/a (Standard)" in warnings[0] and "default/b (unset)" in warnings[0]
    assert "default/c" not in warnings[0] and "default/d" not in warnings[0]


def test_cross_namespace_route_reference_is_warned_about():
    remote = route([pool_ref(api.ALPHA_GROUP, ALPHA, namespace=NAMESPACE)], namespace="gateway-ns")
    result = inventory.report(alpha_basic(routes=[remote]))
    assert any("gateway-ns/llm-route rule 0" in w and "ReferenceGrant" in w for w in result["warnings"])
    assert result["alpha_pools"][0]["routes"][0]["namespace"] == "gateway-ns"


def test_pool_without_route_is_warned_about():
    result = inventory.report(alpha_basic(routes=[]))
    assert any("InferencePool default/%s has no HTTPRoute" % ALPHA in w for w in result["warnings"])
    assert result["alpha_pools"][0]["phase"] == "not_started"


# --- orphans and namespaces ----------------------------------------------------------------------


def test_models_and_route_refs_to_missing_pools_are_orphans():
    models = [model("lost", "lost", pool="gone", criticality="Critical"),
              model("ga-lost", "x", pool="gone-ga", group=api.GA_GROUP, criticality="Critical")]
    routes = [route([pool_ref(api.ALPHA_GROUP, ALPHA)]),
              route([pool_ref(api.GA_GROUP, "missing-ga", 3)], name="other")]
    result = inventory.report(alpha_basic(models=models, routes=routes))
    assert [m["name"] for m in result["orphans"]["models"]] == ["ga-lost", "lost"]
    assert result["orphans"]["routes"] == [{"namespace": NAMESPACE, "name": "other", "rule": 0, "backend": {
        "group": api.GA_GROUP, "kind": "InferencePool", "namespace": NAMESPACE, "name": "missing-ga", "weight": 3}}]
    # orphan models are still preview objects
    assert result["migration_needed"] is True and result["summary"]["inference_models"] == 2


def test_a_route_sending_traffic_to_a_preview_pool_that_is_gone_needs_the_migration_and_a_warning():
    result = inventory.report(alpha_basic(alpha_pools=[], models=[]))
    assert result["migration_needed"] is True
    assert result["removed_alpha_pools"] == []
    [warning] = [w for w in result["warnings"] if "does not exist" in w]
    assert "HTTPRoute %s/llm-route rule 0" % NAMESPACE in warning and "Restore it from a backup" in warning


ALPHA_KEY = refs.BackendKey(api.ALPHA_GROUP, "InferencePool", NAMESPACE, ALPHA)


def test_a_preview_pool_rebuilt_from_a_backup_is_reported_with_its_backup_and_pairs_with_its_v1_pool():
    v1 = ga_pool(migrated_from="%s/%s" % (NAMESPACE, ALPHA))
    backed_up = backup_files.RemovedPool("/backups/20260301T123005Z", alpha_pool(),
                                         [model("base-model", BASE_MODEL, criticality="Critical")])
    result = inventory.report(alpha_basic(extra_ga_pools=[v1], alpha_pools=[], models=[]), removed={ALPHA_KEY: backed_up})
    assert result["alpha_pools"] == []
    [removed] = result["removed_alpha_pools"]
    assert (removed["name"], removed["backup"]) == (ALPHA, "/backups/20260301T123005Z")
    assert [m["name"] for m in removed["models"]] == ["base-model"]
    assert removed["helm_release"] == {"name": ALPHA, "namespace": NAMESPACE}
    assert removed["epp"]["ready"] is True and removed["routes"][0]["rules"][0]["alpha_weight"] == 1
    # The v1 pool pairs with the rebuilt pool: its migration is under way, not finished.
    assert removed["phase"] == result["v1_pools"][0]["phase"] == "side_by_side"
    assert result["summary"]["removed_alpha_pools"] == 1 and result["migration_needed"] is True
    assert any("Backup /backups/20260301T123005Z holds it" in w for w in result["warnings"])


def test_detect_reads_backups_only_for_preview_pools_that_routes_still_send_traffic_to(tmp_path):
    backup_files.write_backup(str(tmp_path), [(api.ALPHA_POOL, alpha_pool())], "migration_backup", None)
    routes = [route([pool_ref(api.ALPHA_GROUP, ALPHA)])]
    gone = MemoryCluster((api.CRD, crd(api.ALPHA_POOL)), *[(api.HTTP_ROUTE, r) for r in routes],
                         server_version=OLD_GKE)
    assert [p["name"] for p in inventory.detect(gone, backup_dir=str(tmp_path))["removed_alpha_pools"]] == [ALPHA]
    assert inventory.detect(gone)["removed_alpha_pools"] == []
    there = MemoryCluster((api.CRD, crd(api.ALPHA_POOL)), (api.ALPHA_POOL, alpha_pool()),
                          *[(api.HTTP_ROUTE, r) for r in routes], server_version=OLD_GKE)
    result = inventory.detect(there, backup_dir=str(tmp_path))
    assert result["removed_alpha_pools"] == [] and [p["name"] for p in result["alpha_pools"]] == [ALPHA]


def test_namespaces_filter_what_is_reported_but_not_what_references_resolve_against():
    team_pool = alpha_pool(name="team-pool", namespace="team")
    services, deployments = epp_objects(ALPHA)
    cross = route([pool_ref(api.ALPHA_GROUP, ALPHA, namespace=NAMESPACE)], name="team-route", namespace="team")
    base = alpha_basic(routes=[cross], services=services, deployments=deployments)
    result = inventory.report(base._replace(alpha_pools=base.alpha_pools + [team_pool]), namespaces=["team"])
    assert [p["name"] for p in result["alpha_pools"]] == ["team-pool"]
    assert result["inference_models"] == []
    # the route in "team" points at a pool outside the filter that exists: not an orphan
    assert result["orphans"]["routes"] == []
    assert result["summary"]["routes_to_alpha"] == 1


def test_namespace_filter_excluding_every_preview_object_needs_no_migration():
    assert inventory.report(alpha_basic(), namespaces=["elsewhere"])["migration_needed"] is False


# --- endpoint pickers -----------------------------------------------------------------------------


def test_epp_not_available_is_not_ready():
    services, deployments = epp_objects(ALPHA, available=0)
    pool = inventory.report(alpha_basic(services=services, deployments=deployments))["alpha_pools"][0]
    assert pool["epp"]["service_found"] is True and pool["epp"]["deployment"] == ALPHA + "-epp"
    assert pool["epp"]["ready"] is False and pool["epp"]["available_replicas"] == 0


def test_epp_service_missing_is_reported():
    pool = inventory.report(alpha_basic(services=[]))["alpha_pools"][0]
    assert pool["epp"] == {"service_found": False, "deployment": None, "available_replicas": 0, "ready": False,
                           "image": None, "args": []}


def test_epp_deployment_is_the_one_the_service_selects_preferring_the_services_name():
    labels = {"inferencepool": ALPHA + "-epp"}
    deployments = [deployment("a-lookalike", labels), deployment(ALPHA + "-epp", labels),
                   deployment("unrelated", {"app": "x"}), deployment(ALPHA + "-epp", labels, namespace="other")]
    pool = inventory.report(alpha_basic(deployments=deployments))["alpha_pools"][0]
    assert pool["epp"]["deployment"] == ALPHA + "-epp"
    none_match = inventory.report(alpha_basic(deployments=[deployment("unrelated", {"app": "x"})]))
    assert none_match["alpha_pools"][0]["epp"]["service_found"] is True
    assert none_match["alpha_pools"][0]["epp"]["deployment"] is None


# --- CRDs and the CRD plan -----------------------------------------------------------------------


def test_crd_summary_reads_versions_bundle_and_manager():
    ga_crd = crd(api.GA_POOL, labels={api.PLATFORM_MANAGED_LABEL: "Reconcile"},
                 annotations={api.CRD_BUNDLE_VERSION_ANNOTATION: "v1.0.0"})
    assert inventory_crds.crd_summary(ga_crd) == {
        "present": True, "served_versions": ["v1"], "stored_versions": ["v1"], "established": True,
        "bundle_version": "v1.0.0", "managed_by": "gke"}
    unestablished = crd(api.INFERENCE_OBJECTIVE, versions=[{"name": "v1alpha1", "served": False, "storage": False},
                                                           {"name": "v1alpha2", "served": True, "storage": True}])
    unestablished["status"]["conditions"][0]["status"] = "False"
    summary = inventory_crds.crd_summary(unestablished)
    assert summary["served_versions"] == ["v1alpha2"] and summary["established"] is False


@pytest.mark.parametrize("labels, annotations, manager", [
    ({api.PLATFORM_MANAGED_LABEL: "Reconcile"}, {}, "gke"),
    ({}, {"components.gke.io/component-name": "gateway"}, "gke"),
    ({"components.gke.io/layer": "addon"}, {}, "gke"),
    ({}, helm_annotations("crds"), "helm"),
    ({api.MANAGED_BY_LABEL: "Helm"}, {}, "helm"),
    ({api.MANAGED_BY_LABEL: "kustomize"}, {}, None),
    ({}, {}, None),
])
def test_crd_manager(labels, annotations, manager):
    assert inventory_crds.crd_manager(crd(api.GA_POOL, labels=labels, annotations=annotations)) == manager


def gke_ga_crd():
    return {api.GA_POOL.crd_name: crd(api.GA_POOL, labels={api.PLATFORM_MANAGED_LABEL: "Reconcile"})}


def test_old_gke_needs_both_v1_crds():
    result = inventory.report(alpha_basic())
    assert result["gke_version"] == "1.34.0-gke.1500000" and result["gke_ships_ga_pool_crd"] is False
    assert result["crd_plan"] == {"install": [api.GA_POOL.crd_name, api.INFERENCE_OBJECTIVE.crd_name],
                                  "keep_managed": []}


def test_new_gke_needs_only_the_objective_crd_and_keeps_its_own():
    crds = dict(alpha_crds(), **gke_ga_crd())
    result = inventory.report(alpha_basic(version=NEW_GKE, crds=crds))
    assert result["is_gke"] is True and result["gke_ships_ga_pool_crd"] is True
    assert result["crd_plan"] == {"install": [api.INFERENCE_OBJECTIVE.crd_name],
                                  "keep_managed": [api.GA_POOL.crd_name]}


def test_new_gke_whose_crd_is_not_there_yet_is_trusted_to_ship_it():
    result = inventory.report(alpha_basic(version=NEW_GKE))
    assert result["crd_plan"]["install"] == [api.INFERENCE_OBJECTIVE.crd_name]


def test_present_v1_crds_need_no_install():
    crds = dict(alpha_crds(), **{api.GA_POOL.crd_name: crd(api.GA_POOL),
                                 api.INFERENCE_OBJECTIVE.crd_name: crd(api.INFERENCE_OBJECTIVE)})
    assert inventory.report(alpha_basic(crds=crds))["crd_plan"] == {"install": [], "keep_managed": []}


def rewrite_crd(field):
    rule = {"type": "object", "properties": {"matches": {"type": "array"}, field: {"type": "array"}}}
    schema = {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "poolRef": {"type": "object"}, "rules": {"type": "array", "items": rule}}}}}}
    return crd(api.INFERENCE_MODEL_REWRITE,
               versions=[{"name": "v1alpha2", "served": True, "storage": True, "schema": schema}])


@pytest.mark.parametrize("field", ["split", "targets"])
def test_model_rewrite_targets_field_comes_from_the_crd_schema(field):
    crds = {api.INFERENCE_MODEL_REWRITE.crd_name: rewrite_crd(field)}
    rewrite = {"apiVersion": api.INFERENCE_MODEL_REWRITE.api_version, "kind": "InferenceModelRewrite",
               "metadata": meta("food-review"),
               "spec": {"poolRef": {"name": GA}, "rules": [{field: [{"modelRewrite": "food-review-1"}]}]}}
    result = inventory.report(snapshot(crds=crds, model_rewrites=[rewrite]))
    assert result["model_rewrite_targets_field"] == field
    assert result["model_rewrites"] == [{"namespace": NAMESPACE, "name": "food-review",
                                         "pool_ref": {"group": api.GA_GROUP, "name": GA},
                                         "rules": [{field: [{"modelRewrite": "food-review-1"}]}]}]


def test_model_rewrite_crd_without_a_schema_leaves_the_field_unknown():
    crds = {api.INFERENCE_MODEL_REWRITE.crd_name: crd(api.INFERENCE_MODEL_REWRITE)}
    assert inventory.report(snapshot(crds=crds))["model_rewrite_targets_field"] is None


# --- objectives, helm, refusal ---------------------------------------------------------------------


def test_objective_pool_ref_group_defaults_to_the_ga_group():
    objective = {"apiVersion": api.INFERENCE_OBJECTIVE.api_version, "kind": "InferenceObjective",
                 "metadata": meta("food-review", annotations={api.MODEL_NAME_ANNOTATION: "food-review"}),
                 "spec": {"priority": 1, "poolRef": {"name": GA}}}
    explicit = copy.deepcopy(objective)
    explicit["metadata"]["name"] = "for-alpha"
    explicit["metadata"]["annotations"] = {}
    explicit["spec"]["poolRef"]["group"] = api.ALPHA_GROUP
    result = inventory.report(snapshot(objectives=[objective, explicit]))
    assert result["objectives"] == [
        {"namespace": NAMESPACE, "name": "food-review", "priority": 1, "model_name": "food-review",
         "pool_ref": {"group": api.GA_GROUP, "name": GA}},
        {"namespace": NAMESPACE, "name": "for-alpha", "priority": 1, "model_name": None,
         "pool_ref": {"group": api.ALPHA_GROUP, "name": GA}},
    ]


def test_helm_release_namespace_falls_back_to_the_object_namespace():
    pool = alpha_pool(release=False)
    assert objects.helm_release(pool) is None
    pool["metadata"]["annotations"] = {api.HELM_RELEASE_NAME_ANNOTATION: "rel"}
    assert objects.helm_release(pool) == {"name": "rel", "namespace": NAMESPACE}


def test_fail_on_found_refuses_with_every_preview_object_named_and_the_result_attached():
    result = inventory.report(alpha_basic())
    with pytest.raises(MigrationError) as refused:
        detect_summary.refuse_preview_objects(result)
    message = str(refused.value)
    assert "3 preview API object(s)" in message
    for name in (ALPHA, "default/food-review", "default/base-model"):
        assert name in message
    assert refused.value.details["alpha_pools"] == result["alpha_pools"]


# --- collection: API calls do not grow with namespaces ----------------------------------------------


def test_collect_lists_each_type_once_across_all_namespaces_and_tolerates_unserved_types():
    # Of the custom types only the preview pool is served: the other lists answer None.
    cluster = MemoryCluster((api.CRD, crd(api.ALPHA_POOL)), server_version=OLD_GKE)
    for i in range(30):
        cluster.add(api.ALPHA_POOL, alpha_pool(namespace="ns-%d" % i))
    collected = inventory.collect(cluster)
    lists = cluster.requests("list")
    assert len(lists) == len(inventory.LISTED_TYPES) and all(c[2] is None for c in lists)
    assert len(cluster.calls) == len(inventory.LISTED_TYPES) + len(api.INFERENCE_CRDS) + 1
    assert len(collected.alpha_pools) == 30 and collected.models == []
    assert len(inventory.report(collected, namespaces=["ns-3"])["alpha_pools"]) == 1


# --- large clusters: paged lists, requests independent of the number of namespaces ---------------


@pytest.mark.parametrize("namespaces", [1, 3, 40])
def test_detection_reads_every_object_in_pages_of_500_with_requests_per_type_not_per_namespace(namespaces):
    cluster = MemoryCluster()
    for rtype in (api.ALPHA_POOL, api.INFERENCE_MODEL):
        cluster.add(api.CRD, crd(rtype))
    for i in range(1201):
        cluster.add(api.INFERENCE_MODEL, model("model-%04d" % i, "m-%d" % i, namespace="team-%02d" % (i % namespaces)))
    for i in range(501):
        cluster.add(api.SERVICE, service("svc-%03d" % i, {"app": "x"}, namespace="team-%02d" % (i % namespaces)))
    snapshot = inventory.collect(cluster)
    assert sorted(m["metadata"]["name"] for m in snapshot.models) == ["model-%04d" % i for i in range(1201)]
    assert len(snapshot.services) == 501
    lists = cluster.requests("list")
    per_kind = dict((rtype.kind, sum(1 for call in lists if call[1] == rtype.kind))
                    for _field, rtype in inventory.LISTED_TYPES)
    # ceil(n / 500) per type (one request for an empty or unserved type), whatever the namespaces.
    assert per_kind[api.INFERENCE_MODEL.kind] == 3 and per_kind[api.SERVICE.kind] == 2
    assert len(lists) == 3 + 2 + (len(inventory.LISTED_TYPES) - 2)
    assert all(call[2] is None for call in lists)


def test_detection_survives_a_continue_token_that_expires_once():
    cluster = MemoryCluster()
    for rtype in (api.ALPHA_POOL, api.INFERENCE_MODEL):
        cluster.add(api.CRD, crd(rtype))
    for i in range(1001):
        cluster.add(api.INFERENCE_MODEL, model("model-%04d" % i, "m-%d" % i, namespace="team-%d" % (i % 5)))
    cluster.expire_continue_tokens = 1
    snapshot = inventory.collect(cluster)
    assert sorted(m["metadata"]["name"] for m in snapshot.models) == ["model-%04d" % i for i in range(1001)]
    # First page, expired second page, then the whole list again.
    assert sum(1 for call in cluster.requests("list") if call[1] == api.INFERENCE_MODEL.kind) == 2 + 3


# --- ownership: who else manages what the migration touches -------------------------------------


def test_alpha_basic_as_helm_installed_it_has_no_other_manager_and_nothing_kubectl_applied():
    result = inventory.report(alpha_basic())
    assert result["managed_objects"] == [] and result["last_applied"] == []
    assert result["summary"]["managed_objects"] == 0 and result["summary"]["last_applied"] == 0


def test_every_object_the_migration_touches_is_checked_for_managers():
    argo = {api.ARGOCD_TRACKING_ANNOTATION: "inference:x"}
    flux = {api.FLUX_KUSTOMIZATION_NAME_LABEL: "apps", api.FLUX_KUSTOMIZATION_NAMESPACE_LABEL: "flux-system"}
    owner = [{"apiVersion": "example.com/v1", "kind": "Stack", "name": "inference", "uid": "1", "controller": True}]
    snap = alpha_basic()
    snap.routes[0]["metadata"]["annotations"] = dict(argo)
    snap.alpha_pools[0]["metadata"]["ownerReferences"] = owner
    snap.models[0]["metadata"]["labels"] = dict(flux)
    snap.services[0]["metadata"]["annotations"] = dict(argo)
    snap.deployments[0]["metadata"]["labels"] = dict(flux)
    # Not touched by the migration: a route to something else, whoever manages it.
    other = route([{"name": "other-svc"}], name="other-route")
    other["metadata"]["annotations"] = dict(argo)
    snap.routes.append(other)
    found = inventory.report(snap)["managed_objects"]
    assert [(o["kind"], o["name"], [m["name"] for m in o["managers"]]) for o in found] == [
        ("Deployment", ALPHA + "-epp", ["flux"]),
        ("HTTPRoute", ROUTE, ["argocd"]),
        ("InferenceModel", "food-review", ["flux"]),
        ("InferencePool", ALPHA, ["owner"]),
        ("Service", ALPHA + "-epp", ["argocd"]),
    ]
    assert all(o["pools"] == ["%s/%s" % (NAMESPACE, ALPHA)] for o in found)


def test_a_route_serving_two_preview_pools_is_listed_once_with_both():
    second = alpha_pool(name="second")
    snap = alpha_basic(routes=[route([pool_ref(api.ALPHA_GROUP, ALPHA)], [pool_ref(api.ALPHA_GROUP, "second")])])
    snap.alpha_pools.append(second)
    snap.routes[0]["metadata"]["labels"] = {api.ARGOCD_INSTANCE_LABEL: "inference"}
    [entry] = inventory.report(snap)["managed_objects"]
    assert (entry["kind"], entry["pools"]) == ("HTTPRoute", ["%s/second" % NAMESPACE, "%s/%s" % (NAMESPACE, ALPHA)])
    # The namespace filter keeps what serves a reported pool.
    assert inventory.report(snap, namespaces=["elsewhere"])["managed_objects"] == []


def test_kubectl_applied_route_and_models_that_name_the_preview_pool_are_listed():
    snap = alpha_basic()
    snap.routes[0]["metadata"]["annotations"] = {api.LAST_APPLIED_ANNOTATION: json.dumps(
        {"apiVersion": api.HTTP_ROUTE.api_version, "kind": "HTTPRoute", "metadata": {"name": ROUTE},
         "spec": {"rules": [{"backendRefs": [pool_ref(api.ALPHA_GROUP, ALPHA)]}]}})}
    snap.models[1]["metadata"]["annotations"] = {api.LAST_APPLIED_ANNOTATION: json.dumps(snap.models[1])}
    found = inventory.report(snap)["last_applied"]
    assert [(o["kind"], o["name"], o["names"]) for o in found] == [
        ("HTTPRoute", ROUTE, ["%s/%s" % (NAMESPACE, ALPHA)]),
        ("InferenceModel", "base-model", ["%s/%s" % (NAMESPACE, ALPHA)]),
    ]
    assert "undoes the migration" in found[0]["fix"] and "delete its source manifest" in found[1]["fix"]


def test_a_pool_rebuilt_from_a_backup_checks_the_routes_and_epp_that_exist_not_the_backup():
    v1 = ga_pool(migrated_from="%s/%s" % (NAMESPACE, ALPHA))
    gone = alpha_pool()
    gone["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"}]
    snap = alpha_basic(extra_ga_pools=[v1], alpha_pools=[], models=[])
    snap.routes[0]["metadata"]["annotations"] = {api.ARGOCD_TRACKING_ANNOTATION: "inference:x"}
    result = inventory.report(snap, removed={ALPHA_KEY: backup_files.RemovedPool("/b", gone, [])})
    assert [(o["kind"], o["name"]) for o in result["managed_objects"]] == [("HTTPRoute", ROUTE)]


def test_every_join_is_a_lookup_so_detection_reads_each_route_a_bounded_number_of_times(monkeypatch):
    """2,000 pools each behind a route of its own must not cost 2,000 x 2,000 route scans (issue 19's estate)."""
    count = 60
    pools = [alpha_pool("pool-%02d" % i, namespace="ns-%d" % (i % 7), release=False) for i in range(count)]
    routes = [route([pool_ref(api.ALPHA_GROUP, "pool-%02d" % i)], name="route-%02d" % i, namespace="ns-%d" % (i % 7))
              for i in range(count)]
    models = [model("model-%02d" % i, "m", pool="pool-%02d" % i, namespace="ns-%d" % (i % 7)) for i in range(count)]
    reads = []
    real = refs.route_backends
    monkeypatch.setattr(refs, "route_backends", lambda r: reads.append(r["metadata"]["name"]) or real(r))
    result = inventory.report(snapshot(alpha_pools=pools, routes=routes, models=models))
    assert len(result["alpha_pools"]) == count
    assert all([r["name"] for r in p["routes"]] == ["route-" + p["name"].split("-")[1]] for p in result["alpha_pools"])
    # A few passes over the routes (index, orphans, warnings, counts), not one per pool.
    assert max(reads.count(name) for name in set(reads)) <= 8, max(reads.count(name) for name in set(reads))
