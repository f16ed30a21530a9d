import copy
import datetime
import os
import stat
from pathlib import Path

import pytest
import yaml

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, backup, backup_files, helm, refs, restore
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

from memory_cluster import (
    MemoryCluster, alpha_pool, alpha_ref, alpha_stack, crd, epp_deployment, ga_ref, helm_release_secret, http_route,
    inference_model,
)
from support import ALPHA, ALPHA_EPP, NAMESPACE, REPO, ROUTE

WHEN = datetime.datetime(2026, 3, 1, 12, 30, 5, tzinfo=datetime.timezone.utc)

STACK = sorted([
    (api.CRD.kind, None, api.ALPHA_POOL.crd_name),
    (api.CRD.kind, None, api.INFERENCE_MODEL.crd_name),
    (api.ALPHA_POOL.kind, NAMESPACE, ALPHA),
    (api.INFERENCE_MODEL.kind, NAMESPACE, "base-model"),
    (api.INFERENCE_MODEL.kind, NAMESPACE, "food-review"),
    (api.HTTP_ROUTE.kind, NAMESPACE, ROUTE),
    (api.DEPLOYMENT.kind, NAMESPACE, ALPHA_EPP),
    (api.SERVICE.kind, NAMESPACE, ALPHA_EPP),
    (api.SERVICE_ACCOUNT.kind, NAMESPACE, ALPHA_EPP),
    (api.CLUSTER_ROLE.kind, None, ALPHA_EPP),
    (api.CLUSTER_ROLE_BINDING.kind, None, ALPHA_EPP),
    (api.HEALTH_CHECK_POLICY.kind, NAMESPACE, ALPHA),
    (api.GCP_BACKEND_POLICY.kind, NAMESPACE, ALPHA),
    (api.CLUSTER_POD_MONITORING.kind, None, "%s-%s" % (NAMESPACE, ALPHA)),
    (api.SECRET.kind, NAMESPACE, "sh.helm.release.v1.%s.v1" % ALPHA),
])


def _names(items):
    return sorted((rtype.kind, obj["metadata"].get("namespace"), obj["metadata"]["name"]) for rtype, obj in items)


def _simple_path_done(cluster):
    """What the simple path leaves: no alpha stack, no alpha CRDs, the route on a v1 pool."""
    for name in api.ALPHA_CRDS:
        cluster.delete(api.CRD, name)
    for rtype in (api.DEPLOYMENT, api.SERVICE, api.SERVICE_ACCOUNT, api.HEALTH_CHECK_POLICY, api.GCP_BACKEND_POLICY,
                  api.SECRET):
        for name in cluster.names(rtype, NAMESPACE):
            if ALPHA in name:
                cluster.delete(rtype, name, NAMESPACE)
    for rtype in (api.CLUSTER_ROLE, api.CLUSTER_ROLE_BINDING, api.CLUSTER_POD_MONITORING):
        for name in cluster.names(rtype):
            cluster.delete(rtype, name)
    route = cluster.get(api.HTTP_ROUTE, ROUTE, NAMESPACE)
    route["spec"]["rules"][0]["backendRefs"] = [ga_ref(weight=100)]
    cluster.replace(api.HTTP_ROUTE, route)
    cluster.writes = []
    return cluster


@pytest.fixture
def stack():
    return alpha_stack(MemoryCluster())


@pytest.fixture
def saved(stack, tmp_path):
    """A backup of the alpha stack on disk, and the cluster after the simple path removed that stack."""
    written = backup_files.write_backup(str(tmp_path), backup.collect(stack), "migration_backup", stack.server_version(),
                                        now=WHEN)
    return written["path"], _simple_path_done(stack)


# --- stripping ------------------------------------------------------------------------------------


def test_strip_removes_what_the_server_owns_and_keeps_the_rest():
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "s", "namespace": "n", "uid": "u", "resourceVersion": "7", "generation": 2,
                            "creationTimestamp": "t", "managedFields": [{}], "selfLink": "/x",
                            "labels": {"a": "b"}, "ownerReferences": [{"uid": "o"}]},
               "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 9002}],
                        "selector": {"app": "x"}},
               "status": {"loadBalancer": {}}}
    original = copy.deepcopy(service)
    assert backup_files.strip(service) == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "namespace": "n", "labels": {"a": "b"}, "ownerReferences": [{"uid": "o"}]},
        "spec": {"ports": [{"port": 9002}], "selector": {"app": "x"}},
    }
    assert service == original
    assert "ownerReferences" not in backup_files.creatable(service)["metadata"]


def test_strip_keeps_cluster_ip_of_kinds_that_are_not_services():
    pool = {"apiVersion": api.ALPHA_POOL.api_version, "kind": api.ALPHA_POOL.kind,
            "metadata": {"name": "p", "uid": "u"}, "spec": {"clusterIP": "kept"}, "status": {"parent": []}}
    assert backup_files.strip(pool) == {"apiVersion": api.ALPHA_POOL.api_version, "kind": api.ALPHA_POOL.kind,
                                        "metadata": {"name": "p"}, "spec": {"clusterIP": "kept"}}


# --- what a backup holds ---------------------------------------------------------------------------


def test_collect_finds_the_whole_preview_stack_and_nothing_else(stack):
    assert _names(backup.collect(stack)) == STACK


def test_collect_finds_an_epp_by_its_flags_when_it_follows_no_naming(stack):
    stack.add(api.ALPHA_POOL, dict(alpha_pool(name="hand-made", epp="hand-made-svc"), metadata={
        "name": "hand-made", "namespace": "team-b"}))
    stack.add(api.DEPLOYMENT, dict(epp_deployment(name="picker", namespace="team-b", args=[
        "-poolName", "hand-made", "-poolNamespace", "team-b"]), metadata={"name": "picker", "namespace": "team-b"}))
    names = _names(backup.collect(stack, pools=["team-b/hand-made"]))
    assert (api.DEPLOYMENT.kind, "team-b", "picker") in names
    assert (api.ALPHA_POOL.kind, NAMESPACE, ALPHA) not in names


def test_collect_scopes_to_named_pools(stack):
    stack.add(api.ALPHA_POOL, dict(alpha_pool(epp="other-epp"), metadata={"name": "other", "namespace": "team-b"}))
    stack.add(api.INFERENCE_MODEL, inference_model("other-model", "m", pool="other", namespace="team-b"))
    stack.add(api.INFERENCE_MODEL, inference_model("unrelated", "u", pool="elsewhere", namespace="team-b"))
    assert _names(backup.collect(stack, pools=["team-b/other"])) == sorted([
        (api.CRD.kind, None, api.ALPHA_POOL.crd_name),
        (api.CRD.kind, None, api.INFERENCE_MODEL.crd_name),
        (api.ALPHA_POOL.kind, "team-b", "other"),
        (api.INFERENCE_MODEL.kind, "team-b", "other-model"),
    ])
    assert (api.ALPHA_POOL.kind, "team-b", "other") not in _names(backup.collect(stack, namespaces=[NAMESPACE]))


@pytest.mark.parametrize("pools, fragment", [(["team-b/none"], "team-b/none"), (["no-slash"], "namespace/name")])
def test_collect_refuses_pools_it_cannot_find(stack, pools, fragment):
    with pytest.raises(MigrationError) as refused:
        backup.collect(stack, pools=pools)
    assert fragment in str(refused.value)


def _interrupted_simple_run(cluster):
    """What a simple run stopped after `helm uninstall` leaves: the route and the models, no pool."""
    cluster.delete(api.ALPHA_POOL, ALPHA, NAMESPACE)
    return cluster


def test_collect_keeps_the_routes_and_models_of_a_pool_that_is_gone_but_still_gets_traffic(stack):
    names = _names(backup.collect(_interrupted_simple_run(stack)))
    assert (api.HTTP_ROUTE.kind, NAMESPACE, ROUTE) in names
    assert (api.INFERENCE_MODEL.kind, NAMESPACE, "base-model") in names
    assert (api.ALPHA_POOL.kind, NAMESPACE, ALPHA) not in names


def test_collect_accepts_a_named_pool_that_is_gone_while_a_route_sends_it_traffic(stack):
    names = _names(backup.collect(_interrupted_simple_run(stack), pools=["%s/%s" % (NAMESPACE, ALPHA)]))
    assert (api.HTTP_ROUTE.kind, NAMESPACE, ROUTE) in names
    assert (api.INFERENCE_MODEL.kind, NAMESPACE, "food-review") in names


def test_collect_ignores_a_route_ref_of_weight_zero_to_a_pool_that_is_gone(stack):
    _interrupted_simple_run(stack)
    route = stack.get(api.HTTP_ROUTE, ROUTE, NAMESPACE)
    route["spec"]["rules"][0]["backendRefs"] = [alpha_ref(weight=0), ga_ref(weight=100)]
    stack.replace(api.HTTP_ROUTE, route)
    assert (api.HTTP_ROUTE.kind, NAMESPACE, ROUTE) not in _names(backup.collect(stack))
    with pytest.raises(MigrationError):
        backup.collect(stack, pools=["%s/%s" % (NAMESPACE, ALPHA)])


# --- writing and reading -----------------------------------------------------------------------------


def test_write_backup_lays_out_one_file_per_object_and_an_index(stack, tmp_path):
    written = backup_files.write_backup(str(tmp_path), backup.collect(stack), "migration_backup", stack.server_version(),
                                        scope={"namespaces": "all"}, now=WHEN)
    root = Path(written["path"])
    assert root == tmp_path / "20260301T123005Z"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20260301T123005Z"]
    assert (root / "inferencepools.inference.networking.x-k8s.io" / ("default_%s.yaml" % ALPHA)).is_file()
    assert (root / "customresourcedefinitions.apiextensions.k8s.io" / (api.ALPHA_POOL.crd_name + ".yaml")).is_file()
    assert (root / "services" / ("default_%s.yaml" % ALPHA_EPP)).is_file()

    index = yaml.safe_load((root / "index.yaml").read_text())
    assert index["what"] == "migration_backup"
    assert index["where"] == str(root)
    assert index["when"] == "2026-03-01T12:30:05Z"
    assert index["cluster"]["server_version"] == "v1.33.5-gke.1080000"
    assert index["collection"] == {"name": "inference_gateway.migration", "version": backup_files.COLLECTION_VERSION}
    assert index["scope"] == {"namespaces": "all"}
    assert index["counts"][api.INFERENCE_MODEL.kind] == 2 and index["counts"][api.CRD.kind] == 2
    assert written["objects"] == index["counts"]
    assert sorted((e["kind"], e["namespace"], e["name"]) for e in index["objects"]) == STACK
    for entry in index["objects"]:
        saved = yaml.safe_load((root / entry["file"]).read_text())
        assert (saved["kind"], saved["metadata"]["name"]) == (entry["kind"], entry["name"])
        assert "resourceVersion" not in saved["metadata"] and "status" not in saved
    service = yaml.safe_load((root / "services" / ("default_%s.yaml" % ALPHA_EPP)).read_text())
    assert "clusterIP" not in service["spec"] and "clusterIPs" not in service["spec"]


def test_write_backup_decodes_helm_releases_for_people(stack, tmp_path):
    written = backup_files.write_backup(str(tmp_path), backup.collect(stack), "migration_backup", None, now=WHEN)
    stem = Path(written["path"]) / "helm-releases" / ("default_%s.v1" % ALPHA)
    assert yaml.safe_load(Path(str(stem) + ".values.yaml").read_text()) == {"provider": {"name": "gke"}}
    assert Path(str(stem) + ".manifest.yaml").read_text() == "kind: X\n"
    index = yaml.safe_load((Path(written["path"]) / "index.yaml").read_text())
    assert index["helm_release_files"] == ["helm-releases/default_%s.v1.manifest.yaml" % ALPHA,
                                           "helm-releases/default_%s.v1.values.yaml" % ALPHA]


def test_two_backups_in_one_second_do_not_collide(stack, tmp_path):
    items = backup.collect(stack)
    first = backup_files.write_backup(str(tmp_path), items, "migration_backup", None, now=WHEN)
    second = backup_files.write_backup(str(tmp_path), items, "migration_backup", None, now=WHEN)
    assert first["path"] != second["path"] and os.path.isdir(second["path"])


def test_a_backup_holding_helm_release_secrets_is_owner_only_whatever_the_umask(stack, tmp_path):
    items = backup.collect(stack)
    assert any(helm.is_release_secret(obj) for _rtype, obj in items)
    previous = os.umask(0o000)
    try:
        written = backup_files.write_backup(str(tmp_path / "new" / "backups"), items, "migration_backup", None, now=WHEN)
    finally:
        os.umask(previous)
    for directory in (tmp_path / "new", tmp_path / "new" / "backups", written["path"]):
        assert stat.S_IMODE(os.stat(str(directory)).st_mode) == 0o700, directory
    for root, directories, files in os.walk(written["path"]):
        for name in directories:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o700, name
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o600, name
    assert any(f.endswith(".values.yaml") for f in written["files"])
    # A destination the operator made keeps its own mode; the backup inside it is still owner-only.
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    os.chmod(str(existing), 0o755)
    inside = backup_files.write_backup(str(existing), items, "migration_backup", None, now=WHEN)
    assert stat.S_IMODE(os.stat(str(existing)).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(inside["path"]).st_mode) == 0o700


def test_dry_run_writes_nothing_but_says_what(stack, tmp_path):
    written = backup_files.write_backup(str(tmp_path), backup.collect(stack), "migration_backup", None, now=WHEN,
                                        dry_run=True)
    assert list(tmp_path.iterdir()) == []
    assert written["index"] in written["files"] and len(written["files"]) == len(STACK) + 3


def test_read_backup_gives_back_what_was_written(saved):
    path = saved[0]
    index, items = backup_files.read_backup(path)
    assert _names(items) == STACK
    pool_type = next(rtype for rtype, obj in items if obj["kind"] == api.ALPHA_POOL.kind)
    assert pool_type == api.ALPHA_POOL


def test_read_backup_refuses_a_directory_without_index(tmp_path):
    with pytest.raises(MigrationError) as refused:
        backup_files.read_backup(str(tmp_path))
    assert "index.yaml" in str(refused.value)


def _pool_key(name=ALPHA, namespace=NAMESPACE):
    return refs.pool_key({"apiVersion": api.ALPHA_POOL.api_version, "metadata": {"name": name, "namespace": namespace}})


def test_removed_pools_come_from_the_newest_whole_backup_that_holds_them(stack, tmp_path):
    older = backup_files.write_backup(str(tmp_path), backup.collect(stack), "migration_backup", None, now=WHEN)
    pool = stack.get(api.ALPHA_POOL, ALPHA, NAMESPACE)
    pool["spec"]["targetPortNumber"] = 9000
    stack.replace(api.ALPHA_POOL, pool)
    stack.add(api.INFERENCE_MODEL, inference_model("elsewhere", "m", pool="other-pool"))
    newer = backup_files.write_backup(str(tmp_path), backup.collect(stack), "migration_backup", None,
                                      now=WHEN + datetime.timedelta(minutes=1))
    # A backup of a later run that no longer holds the pool, and one that never finished, are passed over.
    backup_files.write_backup(str(tmp_path), backup.collect(_interrupted_simple_run(stack)), "migration_backup", None,
                              now=WHEN + datetime.timedelta(minutes=2))
    os.makedirs(str(tmp_path / ("20270101T000000Z" + backup_files.PARTIAL_SUFFIX)))

    found = backup_files.removed_pools_in_backups(str(tmp_path), [_pool_key(), _pool_key("never-backed-up")])
    assert list(found) == [_pool_key()]
    removed = found[_pool_key()]
    assert removed.backup == newer["path"] != older["path"]
    assert removed.pool["spec"]["targetPortNumber"] == 9000
    assert sorted(m["metadata"]["name"] for m in removed.models) == ["base-model", "food-review"]


def test_removed_pools_need_an_existing_backup_directory_and_a_preview_key(stack, tmp_path):
    backup_files.write_backup(str(tmp_path), backup.collect(stack), "migration_backup", None, now=WHEN)
    assert backup_files.removed_pools_in_backups(str(tmp_path / "absent"), [_pool_key()]) == {}
    v1_key = _pool_key()._replace(group=api.GA_GROUP)
    assert backup_files.removed_pools_in_backups(str(tmp_path), [v1_key]) == {}


def test_collection_version_matches_galaxy_yml():
    assert backup_files.COLLECTION_VERSION == yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]


# --- restore order --------------------------------------------------------------------------------------


def test_restore_order_is_crds_objects_helm_releases_routes(stack):
    ordered = sorted(backup.collect(stack), key=backup_files.restore_rank)
    stages = [backup_files.restore_stage(rtype, obj) for rtype, obj in ordered]
    assert stages == sorted(stages)
    kinds = [rtype.kind for rtype, obj in ordered]
    assert kinds[:2] == [api.CRD.kind, api.CRD.kind]
    assert kinds[-2:] == [api.SECRET.kind, api.HTTP_ROUTE.kind]
    assert kinds.index(api.SERVICE_ACCOUNT.kind) < kinds.index(api.DEPLOYMENT.kind) < kinds.index(
        api.ALPHA_POOL.kind) < kinds.index(api.INFERENCE_MODEL.kind)


# --- restoring -------------------------------------------------------------------------------------------


def test_restore_brings_the_stack_back_in_order_and_points_the_route_back(saved):
    path, cluster = saved
    result = restore.restore(cluster, path)
    assert result["changed"] is True
    assert _names(backup.collect(cluster)) == STACK
    route = cluster.get(api.HTTP_ROUTE, ROUTE, NAMESPACE)
    assert route["spec"]["rules"][0]["backendRefs"] == [alpha_ref()]
    assert route["spec"]["rules"][0]["timeouts"] == {"request": "300s"}

    writes = [write[:2] for write in cluster.writes]
    assert writes[:2] == [("create", api.CRD.kind)] * 2
    assert writes[-2:] == [("create", api.SECRET.kind), ("replace", api.HTTP_ROUTE.kind)]
    assert result["routes"] == [{"kind": api.HTTP_ROUTE.kind, "api_version": api.HTTP_ROUTE.api_version,
                                 "namespace": NAMESPACE, "name": ROUTE, "changed": True,
                                 "gateways": [{"namespace": NAMESPACE, "name": "inference-gateway",
                                               "url": "http://127.0.10.1:80"}]}]
    assert result["model_names"] == ["food-review", "meta-llama/Llama-3.1-8B-Instruct"]
    assert cluster.get(api.SERVICE, ALPHA_EPP, NAMESPACE)["spec"]["clusterIP"]

    cluster.writes = []
    again = restore.restore(cluster, path)
    assert again["changed"] is False and cluster.writes == []


def test_restore_leaves_matching_objects_alone_and_puts_back_what_the_migration_changed(stack, tmp_path):
    written = backup_files.write_backup(str(tmp_path), backup.collect(stack), "migration_backup", None, now=WHEN)
    epp = stack.get(api.DEPLOYMENT, ALPHA_EPP, NAMESPACE)
    epp["spec"]["template"]["spec"]["containers"][0]["args"] = ["--pool-name", ALPHA]
    epp["metadata"]["labels"]["touched-by-someone"] = "yes"
    stack.replace(api.DEPLOYMENT, epp)
    stack.writes = []

    result = restore.restore(stack, written["path"])
    assert [(u["kind"], u["name"]) for u in result["updated"]] == [(api.DEPLOYMENT.kind, ALPHA_EPP)]
    assert result["created"] == []
    restored = stack.get(api.DEPLOYMENT, ALPHA_EPP, NAMESPACE)
    assert restored["spec"]["template"]["spec"]["containers"][0]["args"][0] == "-poolName"
    assert restored["metadata"]["labels"]["touched-by-someone"] == "yes"
    key = "%s %s/%s" % (api.DEPLOYMENT.kind, NAMESPACE, ALPHA_EPP)
    assert result["diff"]["before"][key] != result["diff"]["after"][key]


def test_restore_retries_a_lost_resource_version_race(saved):
    path, cluster = saved
    cluster.conflicts_to_raise = 1
    restore.restore(cluster, path)
    assert cluster.get(api.HTTP_ROUTE, ROUTE, NAMESPACE)["spec"]["rules"][0]["backendRefs"] == [alpha_ref()]


def test_restore_without_route_to_alpha_leaves_routes_alone(saved):
    path, cluster = saved
    result = restore.restore(cluster, path, route_to_alpha=False)
    assert cluster.get(api.HTTP_ROUTE, ROUTE, NAMESPACE)["spec"]["rules"][0]["backendRefs"] == [
        ga_ref(weight=100)]
    assert result["routes"][0]["changed"] is False
    assert cluster.get(api.ALPHA_POOL, ALPHA, NAMESPACE) is not None


def test_check_mode_restore_persists_nothing_and_reports_everything(saved):
    path, cluster = saved
    snapshot = copy.deepcopy(cluster.objects)
    cluster.dry_run = True
    result = restore.restore(cluster, path)
    assert cluster.objects == snapshot
    assert sorted((c["kind"], c["namespace"], c["name"]) for c in result["created"]) == sorted(
        name for name in STACK if name[:2] != (api.HTTP_ROUTE.kind, NAMESPACE))
    assert [(u["kind"], u["name"]) for u in result["updated"]] == [(api.HTTP_ROUTE.kind, ROUTE)]


def test_a_backup_that_cannot_be_written_is_refused_naming_dest(stack, tmp_path):
    (tmp_path / "afile").write_text("")
    dest = str(tmp_path / "afile" / "backups")
    with pytest.raises(MigrationError) as refused:
        backup.make_backup(stack, dest)
    message = str(refused.value)
    assert message.startswith("cannot write a backup under %s (" % dest)
    assert "a directory this user can write to. Nothing was changed." in message


def _kube_system(uid):
    return {"metadata": {"name": "kube-system", "uid": uid}}


def test_a_backup_records_the_cluster_it_came_from(stack, tmp_path):
    stack.add(api.NAMESPACE, _kube_system("uid-of-this-cluster"))
    written = backup.make_backup(stack, str(tmp_path))
    index = yaml.safe_load(Path(written["index"]).read_text())
    assert index["cluster"]["kube_system_uid"] == "uid-of-this-cluster"


def test_restore_refuses_a_backup_of_another_cluster_before_writing(stack, tmp_path):
    stack.add(api.NAMESPACE, _kube_system("uid-of-cluster-a"))
    written = backup.make_backup(stack, str(tmp_path))
    other = _simple_path_done(alpha_stack(MemoryCluster()))
    other.add(api.NAMESPACE, _kube_system("uid-of-cluster-b"))
    other.writes = []
    with pytest.raises(MigrationError) as refused:
        restore.restore(other, written["path"])
    message = str(refused.value)
    assert "written on another cluster (kube-system namespace uid uid-of-cluster-a" in message
    assert "than the one connected to (kube-system namespace uid uid-of-cluster-b)" in message
    assert "give rollback_backup_path a backup of this cluster" in message and message.endswith("Nothing was changed.")
    assert other.writes == []


def test_restore_cannot_tell_clusters_apart_without_a_recorded_identity(saved):
    path, cluster = saved  # written without a kube-system namespace to read
    cluster.add(api.NAMESPACE, _kube_system("uid-of-any-cluster"))
    assert restore.restore(cluster, path)["changed"] is True


def test_restore_names_the_files_an_incomplete_backup_lacks(saved):
    path, cluster = saved
    pool_file = next(Path(path).glob("inferencepools.*/*.yaml"))
    pool_file.unlink()
    with pytest.raises(MigrationError) as refused:
        restore.restore(cluster, path)
    assert "is incomplete: index.yaml lists %s, which is missing" % pool_file.relative_to(path) in str(refused.value)
    assert cluster.writes == []


def test_restore_refuses_before_writing_when_a_type_cannot_come_back(tmp_path):
    cluster = MemoryCluster()
    cluster.add(api.CRD, crd(api.INFERENCE_OBJECTIVE))
    cluster.add(api.INFERENCE_OBJECTIVE, {"metadata": {"name": "o", "namespace": NAMESPACE}, "spec": {}})
    cluster.add(api.SECRET, helm_release_secret())
    items = [(api.INFERENCE_OBJECTIVE, cluster.get(api.INFERENCE_OBJECTIVE, "o", NAMESPACE)),
             (api.SECRET, cluster.get(api.SECRET, "sh.helm.release.v1.%s.v1" % ALPHA, NAMESPACE))]
    written = backup_files.write_backup(str(tmp_path), items, "crd_cleanup", None, now=WHEN)
    empty = MemoryCluster()
    with pytest.raises(MigrationError) as refused:
        restore.restore(empty, written["path"])
    assert api.INFERENCE_OBJECTIVE.kind in str(refused.value)
    assert empty.writes == []


# --- pointing a route back -------------------------------------------------------------------------------------


def test_point_route_back_touches_only_the_rules_that_led_to_alpha_pools():
    other_rule = {"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                  "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [
                      {"name": "x", "value": "y"}]}}],
                  "backendRefs": [{"group": "", "kind": "Service", "name": "admin", "port": 80, "weight": 1}]}
    backed = http_route([alpha_ref(weight=100)], extra_rules=[other_rule])
    live = http_route([alpha_ref(weight=10), ga_ref(weight=90)], extra_rules=[dict(other_rule, backendRefs=[])])
    live["metadata"]["labels"] = {"kept": "yes"}

    updated = restore.point_route_back(live, backed)
    assert updated["spec"]["rules"][0]["backendRefs"] == [alpha_ref(weight=100)]
    assert updated["spec"]["rules"][1] == live["spec"]["rules"][1]
    assert updated["metadata"]["labels"] == {"kept": "yes"}
    assert restore.point_route_back(updated, backed) is None


def test_point_route_back_treats_defaulted_fields_as_equal():
    backed = http_route([alpha_ref(weight=1)])
    live = http_route([{"group": api.ALPHA_GROUP, "kind": api.ALPHA_POOL.kind, "name": ALPHA,
                        "namespace": NAMESPACE}])
    assert restore.point_route_back(live, backed) is None


def test_point_route_back_appends_a_rule_the_migration_removed():
    backed = http_route([alpha_ref()])
    live = http_route([ga_ref()])
    live["spec"]["rules"][0]["matches"] = [{"path": {"type": "PathPrefix", "value": "/v2"}}]
    updated = restore.point_route_back(live, backed)
    assert updated["spec"]["rules"] == [live["spec"]["rules"][0], backed["spec"]["rules"][0]]


# --- small pieces ----------------------------------------------------------------------------------------------------


def test_decode_helm_release_reads_helms_double_base64_gzip():
    release = helm.decode_release(helm_release_secret(values={"a": 1}, revision=3))
    assert (release["name"], release["version"], release["config"]) == (ALPHA, 3, {"a": 1})


def test_gateway_url_prefers_the_listener_the_route_names():
    cluster = MemoryCluster()
    cluster.add(api.GATEWAY, {"metadata": {"name": "g", "namespace": "n"},
                              "spec": {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP"},
                                                     {"name": "https", "port": 443, "protocol": "HTTPS"}]},
                              "status": {"addresses": [{"value": "127.0.0.9"}]}})
    route = {"metadata": {"name": "r", "namespace": "n"},
             "spec": {"parentRefs": [{"name": "g", "sectionName": "https"}, {"name": "missing"}]}}
    assert restore.gateway_endpoints(cluster, route) == [
        {"namespace": "n", "name": "g", "url": "https://127.0.0.9:443"},
        {"namespace": "n", "name": "missing", "url": None},
    ]


# --- the module's entry point ---------------------------------------------------------------------------------


def test_make_backup_writes_nothing_when_there_is_nothing_of_the_preview_api(tmp_path):
    result = backup.make_backup(MemoryCluster(), str(tmp_path))
    assert result["changed"] is False and result["path"] is None and list(tmp_path.iterdir()) == []


def test_make_backup_in_check_mode_reports_the_directory_it_would_write(stack, tmp_path):
    stack.dry_run = True
    result = backup.make_backup(stack, str(tmp_path), pools=["%s/%s" % (NAMESPACE, ALPHA)], now=WHEN)
    assert result["changed"] is True and result["path"] == str(tmp_path / "20260301T123005Z")
    assert result["objects"][api.ALPHA_POOL.kind] == 1 and list(tmp_path.iterdir()) == []
    assert result["diff"]["after"]["backup"] == result["path"]


# --- requests independent of the number of namespaces -----------------------------------------


def _fleet(namespaces):
    """One preview stack (pool, EPP with Service and ServiceAccount, release, model, route) per namespace."""
    cluster = MemoryCluster()
    for rtype in (api.ALPHA_POOL, api.INFERENCE_MODEL):
        cluster.add(api.CRD, crd(rtype))
    for namespace in namespaces:
        cluster.add(api.ALPHA_POOL, alpha_pool(namespace=namespace))
        cluster.add(api.DEPLOYMENT, epp_deployment(namespace=namespace))
        cluster.add(api.SERVICE, {"metadata": {"name": ALPHA_EPP, "namespace": namespace}, "spec": {}})
        cluster.add(api.SERVICE_ACCOUNT, {"metadata": {"name": ALPHA_EPP, "namespace": namespace}})
        cluster.add(api.SECRET, helm_release_secret(namespace=namespace))
        cluster.add(api.SECRET, helm_release_secret(release="other", namespace=namespace))
        cluster.add(api.INFERENCE_MODEL, inference_model("base-model", "base", namespace=namespace))
        cluster.add(api.HTTP_ROUTE, http_route([alpha_ref()], namespace=namespace))
    return cluster


@pytest.mark.parametrize("scoped", [False, True], ids=["all-namespaces", "namespaces-named"])
def test_collect_lists_each_type_once_whatever_the_number_of_namespaces_and_secrets_per_release_namespace(scoped):
    calls = {}
    for count in (2, 12):
        namespaces = ["team-%02d" % i for i in range(count)]
        cluster = _fleet(namespaces)
        chosen = backup.collect(cluster, namespaces=namespaces[1:] if scoped else None)
        in_scope = namespaces[1:] if scoped else namespaces
        # Every stack in scope is found, with its own release record and not the other release's.
        assert sorted(ns for rtype, obj in chosen if rtype == api.ALPHA_POOL
                      for ns in [obj["metadata"]["namespace"]]) == in_scope
        assert sorted((obj["metadata"]["namespace"], obj["metadata"]["name"]) for rtype, obj in chosen
                      if rtype == api.SECRET) == [(ns, "sh.helm.release.v1.%s.v1" % ALPHA) for ns in in_scope]
        lists = cluster.requests("list")
        secrets = [call for call in lists if call[1] == api.SECRET.kind]
        others = [call for call in lists if call[1] != api.SECRET.kind]
        assert all(namespace is None for _verb, _kind, namespace, _name in others)
        assert len(others) == len(set(kind for _verb, kind, _ns, _name in others))
        # Secrets only where a release lives, one list for every release there.
        assert sorted(namespace for _verb, _kind, namespace, _name in secrets) == in_scope
        calls[count] = len(others)
    assert calls[2] == calls[12]


def test_a_grant_that_lets_other_namespaces_reach_the_pool_is_backed_up_and_its_preview_entry_comes_back(stack, tmp_path):
    preview_entry = {"group": api.ALPHA_GROUP, "kind": "InferencePool", "name": ALPHA}
    v1_entry = {"group": api.GA_GROUP, "kind": "InferencePool"}
    stack.add(api.CRD, crd(api.REFERENCE_GRANT))
    grant = stack.add(api.REFERENCE_GRANT, {"metadata": {"name": "team-routes", "namespace": NAMESPACE}, "spec": {
        "from": [{"group": api.GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": "team"}], "to": [preview_entry]}})
    stack.add(api.REFERENCE_GRANT, {"metadata": {"name": "other-pool", "namespace": NAMESPACE}, "spec": {
        "from": grant["spec"]["from"], "to": [dict(preview_entry, name="other")]}})
    assert (api.REFERENCE_GRANT.kind, NAMESPACE, "team-routes") in _names(backup.collect(stack))
    assert (api.REFERENCE_GRANT.kind, NAMESPACE, "other-pool") not in _names(backup.collect(stack))
    written = backup_files.write_backup(str(tmp_path), backup.collect(stack), "migration_backup", None, now=WHEN)
    # What phase 3 leaves: the v1 entry added, the preview entry dropped.
    stack.edit(api.REFERENCE_GRANT, "team-routes", NAMESPACE, lambda body: body["spec"].update(to=[v1_entry]))

    result = restore.restore(stack, written["path"])

    assert stack.get(api.REFERENCE_GRANT, "team-routes", NAMESPACE)["spec"]["to"] == [v1_entry, preview_entry]
    assert [(u["kind"], u["name"]) for u in result["updated"]] == [(api.REFERENCE_GRANT.kind, "team-routes")]
    stack.writes = []
    assert restore.restore(stack, written["path"])["changed"] is False and stack.writes == []
