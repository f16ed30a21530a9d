"""reference_grants: grants that allow preview pools across namespaces are extended to the v1 pools, then trimmed."""

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, reference_grants
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from memory_cluster import MemoryCluster, crd

PREVIEW_ANY = {"group": api.ALPHA_GROUP, "kind": "InferencePool"}
V1_ANY = {"group": api.GA_GROUP, "kind": "InferencePool"}
FROM_CHAT = [{"group": api.GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": "team-chat"}]
PAIRS = [{"alpha": "platform/shared-llama", "v1": "platform/shared-llama-ga", "epp_deployment": "x"}]


def grant(to, name="chat-routes", namespace="platform"):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"from": FROM_CHAT, "to": to}}


def cluster_with(*grants, preview_pools=("shared-llama",), served=True):
    objects = [(api.CRD, crd(api.ALPHA_POOL))]
    if served:
        objects.append((api.CRD, crd(api.REFERENCE_GRANT)))
    objects += [(api.REFERENCE_GRANT, g) for g in grants]
    objects += [(api.ALPHA_POOL, {"metadata": {"name": name, "namespace": "platform"}}) for name in preview_pools]
    return MemoryCluster(*objects)


def test_a_grant_for_every_preview_pool_gets_one_for_every_v1_pool_and_keeps_its_from():
    cluster = cluster_with(grant([PREVIEW_ANY]))
    result = reference_grants.update_grants(cluster, PAIRS)
    live = cluster.live(api.REFERENCE_GRANT, "chat-routes", "platform")
    assert live["spec"]["to"] == [PREVIEW_ANY, V1_ANY]
    assert live["spec"]["from"] == FROM_CHAT
    assert result["changed"] and result["grants"] == [
        {"namespace": "platform", "name": "chat-routes", "added": [V1_ANY], "removed": []}]
    assert result["diff"]["after"]["ReferenceGrant platform/chat-routes"] == [PREVIEW_ANY, V1_ANY]


def test_a_named_preview_entry_gets_the_v1_pools_name_and_other_pools_entries_stay_alone():
    named = dict(PREVIEW_ANY, name="shared-llama")
    other = dict(PREVIEW_ANY, name="not-migrated")
    service = {"group": "", "kind": "Service", "name": "shared-llama"}
    cluster = cluster_with(grant([named, other, service]))
    reference_grants.update_grants(cluster, PAIRS)
    assert cluster.live(api.REFERENCE_GRANT, "chat-routes", "platform")["spec"]["to"] == [
        named, other, service, dict(V1_ANY, name="shared-llama-ga")]


def test_a_second_run_writes_nothing():
    cluster = cluster_with(grant([PREVIEW_ANY]))
    reference_grants.update_grants(cluster, PAIRS)
    writes = len(cluster.writes)
    again = reference_grants.update_grants(cluster, PAIRS)
    assert not again["changed"] and again["grants"] == [] and len(cluster.writes) == writes


def test_check_mode_writes_nothing_and_reports_the_change():
    cluster = cluster_with(grant([PREVIEW_ANY]))
    cluster.dry_run = True
    result = reference_grants.update_grants(cluster, PAIRS)
    assert result["changed"]
    assert cluster.live(api.REFERENCE_GRANT, "chat-routes", "platform")["spec"]["to"] == [PREVIEW_ANY]


def test_spent_preview_entries_go_only_once_no_preview_pool_is_left():
    cluster = cluster_with(grant([PREVIEW_ANY]))
    reference_grants.update_grants(cluster, PAIRS)
    kept = reference_grants.update_grants(cluster, PAIRS, remove_spent_preview_entries=True)
    assert not kept["changed"], "a preview pool is still in the namespace, so its entry still allows something"
    cluster.objects = dict((k, v) for k, v in cluster.objects.items() if k[1] != api.ALPHA_POOL.plural)
    removed = reference_grants.update_grants(cluster, PAIRS, remove_spent_preview_entries=True)
    assert cluster.live(api.REFERENCE_GRANT, "chat-routes", "platform")["spec"]["to"] == [V1_ANY]
    assert removed["grants"][0]["removed"] == [PREVIEW_ANY]


def test_removal_alone_adds_the_v1_entry_first_so_no_route_loses_its_permission():
    # The simple path removes the preview stack before the v1 pools exist, and updates grants once, afterwards.
    cluster = cluster_with(grant([dict(PREVIEW_ANY, name="shared-llama")]), preview_pools=())
    reference_grants.update_grants(cluster, PAIRS, remove_spent_preview_entries=True)
    assert cluster.live(api.REFERENCE_GRANT, "chat-routes", "platform")["spec"]["to"] == [
        dict(V1_ANY, name="shared-llama-ga")]


def test_a_grant_changed_meanwhile_keeps_the_other_writers_edit():
    cluster = cluster_with(grant([PREVIEW_ANY]))
    cluster.conflicts_to_raise = 1

    def other_writer(c, verb):
        c.before_write = None
        c.edit(api.REFERENCE_GRANT, "chat-routes", "platform",
               lambda body: body["spec"]["to"].append({"group": "", "kind": "Service"}))

    cluster.before_write = other_writer
    reference_grants.update_grants(cluster, PAIRS)
    assert cluster.live(api.REFERENCE_GRANT, "chat-routes", "platform")["spec"]["to"] == [
        PREVIEW_ANY, {"group": "", "kind": "Service"}, V1_ANY]


def test_nothing_happens_where_reference_grants_are_not_served():
    cluster = cluster_with(served=False)
    assert reference_grants.update_grants(cluster, PAIRS) == {
        "changed": False, "grants": [], "diff": {"before": {}, "after": {}}}


def test_a_v1_pool_outside_its_preview_pools_namespace_is_refused():
    with pytest.raises(MigrationError, match="same namespace|namespace of preview pool"):
        reference_grants.update_grants(cluster_with(grant([PREVIEW_ANY])),
                                       [{"alpha": "platform/shared-llama", "v1": "other/shared-llama-ga"}])
