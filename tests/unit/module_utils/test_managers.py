import json

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, managers

NAMESPACE = "default"


def obj(labels=None, annotations=None, owners=None, kind="HTTPRoute", api_version=api.HTTP_ROUTE.api_version):
    metadata = {"name": "llm-route", "namespace": NAMESPACE}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    if owners:
        metadata["ownerReferences"] = owners
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


HELM = {api.HELM_RELEASE_NAME_ANNOTATION: "pool", api.HELM_RELEASE_NAMESPACE_ANNOTATION: NAMESPACE}


def names(found):
    return [(m["name"], m["by"]) for m in found]


def test_an_unmanaged_object_has_no_manager():
    assert managers.managers_of(obj()) == []
    assert managers.managers_of(obj(labels={"app": "x"}, annotations=HELM)) == []


def test_argo_cd_annotation_tracking_names_the_application_and_says_what_to_do():
    [found] = managers.managers_of(obj(annotations={api.ARGOCD_TRACKING_ANNOTATION:
                                                    "inference:gateway.networking.k8s.io/HTTPRoute:default/llm-route"}))
    assert (found["name"], found["by"]) == ("argocd", "Argo CD Application inference")
    assert api.ARGOCD_TRACKING_ANNOTATION in found["evidence"]
    assert "sync" in found["fix"] and "Git" in found["fix"]


def test_argo_cd_label_tracking_counts_only_without_helm_release_annotations():
    labelled = {api.ARGOCD_INSTANCE_LABEL: "inference"}
    assert names(managers.managers_of(obj(labels=labelled))) == [("argocd", "Argo CD Application inference")]
    # The same label on what `helm install` wrote is the chart's release name, not Argo CD.
    assert managers.managers_of(obj(labels=labelled, annotations=HELM)) == []
    # The annotation is conclusive even on a Helm-installed object.
    tracked = dict(HELM, **{api.ARGOCD_TRACKING_ANNOTATION: "apps:/Service:default/epp"})
    assert names(managers.managers_of(obj(labels=labelled, annotations=tracked))) == [("argocd", "Argo CD Application apps")]


def test_flux_kustomization_and_helm_release_are_named_with_their_namespace():
    labels = {api.FLUX_KUSTOMIZATION_NAME_LABEL: "apps", api.FLUX_KUSTOMIZATION_NAMESPACE_LABEL: "flux-system",
              api.FLUX_HELMRELEASE_NAME_LABEL: "pool", api.FLUX_HELMRELEASE_NAMESPACE_LABEL: "serving"}
    found = managers.managers_of(obj(labels=labels, annotations=HELM))
    assert names(found) == [("flux", "Flux Kustomization flux-system/apps"), ("flux", "Flux HelmRelease serving/pool")]
    assert "flux suspend kustomization apps -n flux-system" in found[0]["fix"]
    assert "flux suspend helmrelease pool -n serving" in found[1]["fix"]


def test_every_owner_reference_is_a_manager_and_a_controller_says_so():
    owners = [{"apiVersion": "example.com/v1", "kind": "Stack", "name": "inference", "uid": "1", "controller": True},
              {"apiVersion": "v1", "kind": "ConfigMap", "name": "anchor", "uid": "2"}]
    found = managers.managers_of(obj(owners=owners))
    assert names(found) == [("owner", "Stack inference (its controller)"), ("owner", "ConfigMap anchor")]
    assert "reconciles" in found[0]["fix"] and "deleted" in found[1]["fix"]


def applied(manifest):
    return {api.LAST_APPLIED_ANNOTATION: json.dumps(manifest)}


def test_last_applied_route_names_its_preview_pools_whatever_the_weight():
    manifest = {"apiVersion": api.HTTP_ROUTE.api_version, "kind": "HTTPRoute", "metadata": {"name": "llm-route"},
                "spec": {"rules": [{"backendRefs": [
                    {"group": api.ALPHA_GROUP, "kind": "InferencePool", "name": "pool-b", "weight": 0},
                    {"group": api.ALPHA_GROUP, "kind": "InferencePool", "name": "pool-a", "namespace": "other"},
                    {"group": api.GA_GROUP, "kind": "InferencePool", "name": "pool-ga"},
                    {"name": "pool-a"}]}]}}
    assert managers.applied_alpha_pools(obj(annotations=applied(manifest))) == ["default/pool-b", "other/pool-a"]


def test_last_applied_preview_pool_and_model_name_their_pool():
    pool = {"apiVersion": api.ALPHA_POOL.api_version, "kind": "InferencePool", "metadata": {"name": "pool-a"}}
    assert managers.applied_alpha_pools(
        obj(annotations=applied(pool), kind="InferencePool", api_version=api.ALPHA_POOL.api_version)) == ["default/pool-a"]
    model = {"apiVersion": api.INFERENCE_MODEL.api_version, "kind": "InferenceModel", "metadata": {"name": "m"},
             "spec": {"poolRef": {"name": "pool-a"}}}
    assert managers.applied_alpha_pools(obj(annotations=applied(model))) == ["default/pool-a"]


@pytest.mark.parametrize("annotation", [None, "", "not json", "[1, 2]", json.dumps({"kind": "HTTPRoute"}),
                                        json.dumps({"apiVersion": api.HTTP_ROUTE.api_version, "kind": "HTTPRoute",
                                                    "spec": {"rules": "garbage"}})])
def test_no_or_unreadable_last_applied_names_nothing(annotation):
    annotations = {api.LAST_APPLIED_ANNOTATION: annotation} if annotation is not None else None
    assert managers.applied_alpha_pools(obj(annotations=annotations)) == []


@pytest.mark.parametrize("accept, accepted", [
    (True, list(api.OBJECT_MANAGERS)), ("true", list(api.OBJECT_MANAGERS)), ("yes", list(api.OBJECT_MANAGERS)),
    (False, []), ("false", []), ("", []), (None, []), ([], []),
    (["argocd"], ["argocd"]), ("argocd, flux", ["argocd", "flux"]),
])
def test_accepted_managers_reads_a_bool_a_list_or_the_string_of_either(accept, accepted):
    assert managers.accepted_managers(accept) == accepted


def test_last_applied_fix_says_what_to_change_in_the_source():
    assert "change its source manifest to the v1 InferencePool" in managers.last_applied_fix("HTTPRoute", ["default/a"])
    assert "undoes the migration" in managers.last_applied_fix("HTTPRoute", ["default/a"])
    assert "delete its source manifest" in managers.last_applied_fix("InferenceModel", ["default/a"])
