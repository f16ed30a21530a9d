from ansible_collections.inference_gateway.migration.plugins.module_utils import api, refs


def test_missing_group_kind_and_namespace_take_gateway_api_defaults():
    key = refs.backend_key({"name": "svc"}, "team-a")
    assert key == refs.BackendKey("", "Service", "team-a", "svc")


def test_pools_of_the_same_name_in_the_two_groups_differ():
    alpha = refs.backend_key({"group": api.ALPHA_GROUP, "kind": "InferencePool", "name": "p"}, "ns")
    ga = refs.backend_key({"group": api.GA_GROUP, "kind": "InferencePool", "name": "p"}, "ns")
    assert alpha != ga


def test_missing_weight_means_one_and_zero_stays_zero():
    assert refs.weight_of({"name": "a"}) == 1
    assert refs.weight_of({"name": "a", "weight": 0}) == 0


def test_pool_key_matches_the_ref_a_route_uses():
    pool = {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "p", "namespace": "ns"}}
    ref = {"group": api.GA_GROUP, "kind": "InferencePool", "name": "p"}
    assert refs.pool_key(pool) == refs.backend_key(ref, "ns")


def test_route_backends_walks_every_rule():
    route = {"metadata": {"name": "r", "namespace": "ns"},
             "spec": {"rules": [{"backendRefs": [{"name": "a", "weight": 3}]},
                                {"matches": []},
                                {"backendRefs": [{"name": "b"}, {"name": "c", "weight": 0}]}]}}
    found = [(r, i, k.name, w) for r, i, k, w in refs.route_backends(route)]
    assert found == [(0, 0, "a", 3), (2, 0, "b", 1), (2, 1, "c", 0)]


def test_ref_to_names_the_namespace_only_across_namespaces():
    key = refs.BackendKey(api.GA_GROUP, "InferencePool", "ns", "p")
    assert refs.ref_to(key, "ns", 5) == {"group": api.GA_GROUP, "kind": "InferencePool", "name": "p", "weight": 5}
    assert refs.ref_to(key, "other", 0)["namespace"] == "ns"
    assert refs.backend_key(refs.ref_to(key, "other", 0), "other") == key


def test_only_a_weighted_ref_to_a_preview_pool_sends_it_traffic():
    alpha = refs.BackendKey(api.ALPHA_GROUP, "InferencePool", "default", "p")
    assert refs.sends_traffic_to_alpha_pool(alpha, 1) is True
    assert refs.sends_traffic_to_alpha_pool(alpha, 0) is False
    assert refs.sends_traffic_to_alpha_pool(alpha._replace(group=api.GA_GROUP), 50) is False
    assert refs.sends_traffic_to_alpha_pool(alpha._replace(kind="Service"), 50) is False
