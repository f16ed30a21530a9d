import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, permissions
from memory_cluster import MemoryCluster


def _has(needed, verb, rtype, namespace=None):
    return {"verb": verb, "group": rtype.group, "resource": rtype.plural, "namespace": namespace} in needed


def test_detect_needs_cluster_wide_lists_and_reads_of_crds():
    needed = permissions.required_permissions("detect", ["default"])
    assert {p["verb"] for p in needed} == {"list", "get"}
    assert all(p["namespace"] is None for p in needed)
    assert _has(needed, "list", api.ALPHA_POOL)
    assert _has(needed, "list", api.INFERENCE_MODEL_REWRITE)
    assert _has(needed, "get", api.CRD)


def test_zero_downtime_needs_route_updates_and_crd_deletion_in_each_namespace():
    needed = permissions.required_permissions("zero_downtime", ["team-a", "team-b"])
    for namespace in ("team-a", "team-b"):
        assert _has(needed, "update", api.HTTP_ROUTE, namespace)
        assert _has(needed, "delete", api.ALPHA_POOL, namespace)
        assert _has(needed, "create", api.INFERENCE_OBJECTIVE, namespace)
    assert _has(needed, "delete", api.CRD)
    assert _has(needed, "create", api.CLUSTER_ROLE)


def test_migrations_list_what_the_backup_reads_cluster_wide_but_never_secrets():
    needed = permissions.required_permissions("simple", ["ns"])
    for rtype in (api.CONFIG_MAP, api.ROLE_BINDING, api.CLUSTER_ROLE, api.HEALTH_CHECK_POLICY):
        assert _has(needed, "list", rtype)
    assert not _has(needed, "list", api.SECRET) and _has(needed, "list", api.SECRET, "ns")
    assert not _has(permissions.required_permissions("simple", ["ns"], gke_policies=False), "list",
                    api.GCP_BACKEND_POLICY)


def test_helm_secrets_only_when_helm_manages_the_stacks():
    assert _has(permissions.required_permissions("simple", ["ns"], helm=True), "create", api.SECRET, "ns")
    assert not _has(permissions.required_permissions("simple", ["ns"], helm=False), "create", api.SECRET, "ns")


def test_rollback_recreates_preview_objects():
    needed = permissions.required_permissions("rollback", ["ns"])
    assert _has(needed, "create", api.ALPHA_POOL, "ns")
    assert not _has(permissions.required_permissions("simple", ["ns"]), "create", api.ALPHA_POOL, "ns")


def test_no_permission_is_listed_twice():
    needed = permissions.required_permissions("zero_downtime", ["ns", "ns"])
    keys = [tuple(sorted(p.items())) for p in needed]
    assert len(keys) == len(set(keys))


def test_unknown_path_is_refused():
    with pytest.raises(ValueError, match="unknown migration path"):
        permissions.required_permissions("fast", [])


def test_review_body_and_description():
    permission = {"verb": "delete", "group": api.CRD.group, "resource": api.CRD.plural, "namespace": None}
    body = permissions.review_body(permission)
    assert body["kind"] == "SelfSubjectAccessReview"
    assert "namespace" not in body["spec"]["resourceAttributes"]
    assert permissions.describe_permission(permission) == \
        "delete customresourcedefinitions.apiextensions.k8s.io cluster-wide"


def test_check_splits_allowed_from_denied():
    needed = permissions.required_permissions("zero_downtime", ["ns"])
    allowed, denied = permissions.check(MemoryCluster(allowed_verbs={"get", "list", "watch"}), needed)
    assert allowed and denied
    assert all(p["verb"] in {"get", "list", "watch"} for p in allowed)
    assert not any(p["verb"] in {"get", "list", "watch"} for p in denied)
