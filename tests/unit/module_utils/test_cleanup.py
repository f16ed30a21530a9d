import os

import pytest
import yaml

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, cleanup
from ansible_collections.inference_gateway.migration.plugins.module_utils.epp import go_flags, served_pools
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

from memory_cluster import (
    MemoryCluster, alpha_ref, alpha_stack, crd, epp_deployment, ga_ref, http_route, inference_model,
)
from support import ALPHA, ALPHA_EPP, BASE_MODEL, GA, NAMESPACE, ROUTE


def _blocker_names(error):
    return sorted((b["kind"], b["namespace"], b["name"]) for b in error.details["blockers"])


def _end_of_migration(cluster):
    """The state the simple path leaves: alpha objects gone, GA stack and objectives in place."""
    for rtype in (api.ALPHA_POOL, api.INFERENCE_MODEL, api.DEPLOYMENT, api.HTTP_ROUTE):
        for name in cluster.names(rtype, NAMESPACE):
            cluster.delete(rtype, name, NAMESPACE)
    cluster.add(api.HTTP_ROUTE, http_route([ga_ref()]))
    for rtype in (api.GA_POOL, api.INFERENCE_OBJECTIVE):
        cluster.add(api.CRD, crd(rtype))
    cluster.add(api.INFERENCE_OBJECTIVE, {"metadata": {"name": "food-review", "namespace": NAMESPACE},
                                          "spec": {"priority": 1}})
    return cluster


@pytest.fixture
def migrated():
    return _end_of_migration(alpha_stack(MemoryCluster()))


# --- reading endpoint-picker flags ---------------------------------------------------------


def test_go_flags_reads_every_spelling_go_accepts():
    flags = go_flags(["/epp", "-poolName", "a", "--pool-namespace=ns", "-v=3", "--secure-serving", "--x", "y"])
    assert flags == {"poolName": "a", "pool-namespace": "ns", "v": "3", "secure-serving": "true", "x": "y"}


@pytest.mark.parametrize("args, group, namespace, flag", [
    (["-poolName", "p", "-poolNamespace", "team"], api.ALPHA_GROUP, "team", "poolName"),
    (["--poolName=p"], api.ALPHA_GROUP, api.EPP_DEFAULT_POOL_NAMESPACE, "poolName"),
    (["--pool-name", "p", "--pool-group", api.ALPHA_GROUP], api.ALPHA_GROUP, api.EPP_DEFAULT_POOL_NAMESPACE,
     "pool-name"),
    (["--pool-name=p", "--pool-namespace=team"], api.GA_GROUP, "team", "pool-name"),
])
def test_served_pools_tells_the_group_from_the_flag_style(args, group, namespace, flag):
    served = list(served_pools(epp_deployment(args=args)))
    assert [(s.container, s.pool.group, s.pool.kind, s.pool.namespace, s.pool.name, s.flag) for s in served] == [
        ("epp", group, api.POOL_TYPES[group].kind, namespace, "p", flag)]


def test_served_pools_ignores_containers_that_name_no_pool():
    deployment = epp_deployment(args=["--model", BASE_MODEL, "--port", "8000"])
    assert list(served_pools(deployment)) == []


# --- refusing bad requests -------------------------------------------------------------------


@pytest.mark.parametrize("crds, force, backup_dir, fragment", [
    ([api.INFERENCE_OBJECTIVE.crd_name], False, None, "GA stack still needs"),
    ([api.GA_POOL.crd_name, api.ALPHA_POOL.crd_name], False, "/tmp/b", "GA stack still needs"),
    (list(api.ALPHA_CRDS), True, None, "set backup_dir"),
    ([], False, None, "crds is empty"),
])
def test_bad_requests_are_refused_before_reading_the_cluster(crds, force, backup_dir, fragment):
    cluster = alpha_stack(MemoryCluster())
    with pytest.raises(MigrationError) as refused:
        cleanup.remove_crds(cluster, crds, force=force, backup_dir=backup_dir)
    assert fragment in str(refused.value)
    assert cluster.writes == []


def test_protected_crd_goes_only_when_named_and_forced(migrated, tmp_path):
    result = cleanup.remove_crds(migrated, [api.INFERENCE_OBJECTIVE.crd_name], force=True, backup_dir=str(tmp_path))
    assert result["deleted"] == [api.INFERENCE_OBJECTIVE.crd_name]
    assert [(b["kind"], b["name"]) for b in result["blockers"]] == [(api.INFERENCE_OBJECTIVE.kind, "food-review")]
    assert migrated.get(api.CRD, api.GA_POOL.crd_name) is not None


# --- blockers --------------------------------------------------------------------------------


def test_a_live_preview_stack_blocks_with_every_user_named():
    cluster = alpha_stack(MemoryCluster())
    with pytest.raises(MigrationError) as refused:
        cleanup.remove_crds(cluster)
    assert _blocker_names(refused.value) == sorted([
        (api.DEPLOYMENT.kind, NAMESPACE, ALPHA_EPP),
        (api.HTTP_ROUTE.kind, NAMESPACE, ROUTE),
        (api.ALPHA_POOL.kind, NAMESPACE, ALPHA),
        (api.INFERENCE_MODEL.kind, NAMESPACE, "base-model"),
        (api.INFERENCE_MODEL.kind, NAMESPACE, "food-review"),
    ])
    message = str(refused.value)
    assert "nothing was changed" in message and ROUTE in message and "flag -poolName" in message
    assert cluster.writes == []


def test_a_stray_model_in_another_namespace_blocks(migrated):
    migrated.add(api.INFERENCE_MODEL, inference_model("stray", "stray-model", namespace="team-b"))
    writes_before = list(migrated.writes)
    with pytest.raises(MigrationError) as refused:
        cleanup.remove_crds(migrated)
    assert _blocker_names(refused.value) == [(api.INFERENCE_MODEL.kind, "team-b", "stray")]
    assert "team-b/stray" in str(refused.value)
    assert migrated.writes == writes_before


def test_an_epp_flipped_to_the_alpha_group_by_flag_blocks(migrated):
    migrated.add(api.DEPLOYMENT, epp_deployment(name="ga-epp", args=["--pool-name", "p", "--pool-group",
                                                                     api.ALPHA_GROUP]))
    with pytest.raises(MigrationError) as refused:
        cleanup.remove_crds(migrated)
    assert _blocker_names(refused.value) == [(api.DEPLOYMENT.kind, NAMESPACE, "ga-epp")]


def test_ga_routes_and_ga_epps_do_not_block(migrated):
    migrated.add(api.DEPLOYMENT, epp_deployment(name="ga-epp", args=["--pool-name", GA]))
    assert cleanup.remove_crds(migrated)["changed"] is True


def test_force_overrides_leftovers_but_never_a_route(migrated, tmp_path):
    migrated.add(api.HTTP_ROUTE, http_route([alpha_ref(), ga_ref()], name="half-way", namespace="team-b"))
    with pytest.raises(MigrationError) as refused:
        cleanup.remove_crds(migrated, force=True, backup_dir=str(tmp_path))
    assert _blocker_names(refused.value) == [(api.HTTP_ROUTE.kind, "team-b", "half-way")]
    assert "rule 0 backendRef 0" in str(refused.value)
    assert os.listdir(str(tmp_path)) == []


# --- deleting ----------------------------------------------------------------------------------


def test_deletes_exactly_the_alpha_crds_and_is_idempotent(migrated):
    crds_before = set(migrated.names(api.CRD))
    result = cleanup.remove_crds(migrated)
    assert result["changed"] is True
    assert result["deleted"] == list(api.ALPHA_CRDS)
    assert set(migrated.names(api.CRD)) == crds_before - set(api.ALPHA_CRDS)
    assert migrated.names(api.INFERENCE_OBJECTIVE) == ["food-review"]
    assert result["diff"]["before"]["crds"] == sorted(crds_before & set(t.crd_name for t in api.INFERENCE_CRDS))
    assert result["diff"]["after"]["crds"] == sorted([api.GA_POOL.crd_name, api.INFERENCE_OBJECTIVE.crd_name])

    again = cleanup.remove_crds(migrated)
    assert again["changed"] is False
    assert again["absent"] == list(api.ALPHA_CRDS) and again["deleted"] == []


def test_deletes_are_guarded_by_resource_version(migrated):
    cleanup.remove_crds(migrated)
    deletes = [w for w in migrated.writes if w[0] == "delete" and w[1] == api.CRD.kind]
    assert [w[3] for w in deletes] == list(api.ALPHA_CRDS)


def test_check_mode_deletes_and_writes_nothing(migrated, tmp_path):
    migrated.dry_run = True
    result = cleanup.remove_crds(migrated, backup_dir=str(tmp_path))
    assert result["changed"] is True and result["deleted"] == list(api.ALPHA_CRDS)
    assert all(migrated.get(api.CRD, name) is not None for name in api.ALPHA_CRDS)
    assert result["backup_files"] and os.listdir(str(tmp_path)) == []


def test_force_backs_up_leftovers_then_deletes_them(migrated, tmp_path):
    migrated.add(api.INFERENCE_MODEL, inference_model("stray", "stray-model", namespace="team-b"))
    result = cleanup.remove_crds(migrated, force=True, backup_dir=str(tmp_path))
    assert result["deleted"] == list(api.ALPHA_CRDS)
    assert [(b["kind"], b["namespace"], b["name"]) for b in result["blockers"]] == [
        (api.INFERENCE_MODEL.kind, "team-b", "stray")]
    files = [f for f in result["backup_files"] if not f.endswith("index.yaml")]
    saved = [yaml.safe_load(open(f)) for f in files]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in saved) == sorted(
        [(api.CRD.kind, name) for name in api.ALPHA_CRDS] + [(api.INFERENCE_MODEL.kind, "stray")])
    assert migrated.names(api.INFERENCE_MODEL) == []


def test_absent_crds_are_ok_and_unchanged():
    cluster = MemoryCluster()
    result = cleanup.remove_crds(cluster)
    assert result == {"changed": False, "deleted": [], "absent": list(api.ALPHA_CRDS), "blockers": [],
                      "backup_files": [], "diff": {"before": {"crds": []}, "after": {"crds": []}}}


def test_a_crd_held_by_a_finalizer_times_out_naming_it(migrated):
    migrated.live(api.CRD, api.ALPHA_POOL.crd_name)["metadata"]["finalizers"] = ["customresourcecleanup.apiextensions.k8s.io"]
    with pytest.raises(MigrationError) as timed_out:
        cleanup.remove_crds(migrated, wait_timeout=0)
    assert api.ALPHA_POOL.crd_name in str(timed_out.value) and "finalizer" in str(timed_out.value)
