"""What a route's rules send, and whether another writer changed what the migration wrote."""

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, route_traffic, routes
from test_routes import ALPHA, ALPHA_ID, GA, GA_ID, SVC_ID, live_route, pool, split


def written_by(route, *managers):
    """The route with metadata.managedFields naming ``managers`` ((name, time, owns rules)) as the API server keeps them."""
    route["metadata"]["managedFields"] = [
        {"manager": name, "operation": "Update", "time": time, "apiVersion": "gateway.networking.k8s.io/v1",
         "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:rules": {}} if owns_rules else {"f:hostnames": {}}}}
        for name, time, owns_rules in managers]
    return route


def as_written(route, split_):
    """What the route's rules look like to a gate right after traffic_split wrote them."""
    plan = routes.plan_route(route, split_)
    return plan.after, [{"index": rule["index"], "weights": rule["after"]} for rule in plan.rules]


def test_a_route_still_as_written_is_not_reverted():
    after, written = as_written(live_route(), split(pool(ALPHA, 50), pool(GA, 50)))
    assert route_traffic.reverted_rules(after, written) == []


def test_the_same_traffic_spelled_otherwise_is_not_a_revert():
    # Back at 0 % on v1 the migration wrote preview 100 and v1 0; the Git version, with only the preview ref and no
    # weight, sends the same traffic.
    after, written = as_written(live_route(), split(pool(ALPHA, 100), pool(GA, 0), rules=[0], add_missing=True))
    assert written == [{"index": 0, "weights": {ALPHA_ID: 100, GA_ID: 0}}]
    assert route_traffic.reverted_rules(live_route(), written) == []


def test_a_route_put_back_by_another_writer_names_the_rule_the_shares_and_the_writer():
    after, written = as_written(live_route(), split(pool(ALPHA, 50), pool(GA, 50)))
    put_back = written_by(live_route(), (api.FIELD_MANAGER, "2026-12-04T10:00:05Z", True),
                          ("kubectl-edit", "2026-12-04T09:00:00Z", True),
                          ("argocd-controller", "2026-12-04T10:00:07Z", True),
                          ("hostname-bot", "2026-12-04T10:00:09Z", False))
    [problem] = route_traffic.reverted_rules(put_back, written)
    assert problem.startswith("HTTPRoute default/llm-route was changed by another writer after the migration wrote it "
                              "(last written by field manager argocd-controller (Update at 2026-12-04T10:00:07Z)): ")
    # Rule 0 sends everything to the preview pool either way; only the canary rule's shares moved.
    assert (": rule 1 (canary) now sends %s 4.8 %%, %s 9.5 %%, %s 85.7 %%; the migration wrote %s 4.8 %%, %s 47.6 %%, "
            "%s 47.6 %%. " % (SVC_ID, GA_ID, ALPHA_ID, SVC_ID, GA_ID, ALPHA_ID)) in problem
    assert "rule 0" not in problem and "suspend the sync" in problem


def test_a_rule_that_disappeared_is_a_revert_and_an_unnamed_writer_is_said_so():
    after, written = as_written(live_route(), split(pool(ALPHA, 50), pool(GA, 50)))
    shortened = live_route()
    shortened["spec"]["rules"] = shortened["spec"]["rules"][:1]
    [problem] = route_traffic.reverted_rules(shortened, written)
    assert "rule 1 is gone (the migration wrote " in problem
    assert "metadata.managedFields names no other writer of its rules" in problem


def test_shares_ignore_zero_weights_and_a_rule_that_sends_nothing():
    assert route_traffic.traffic_shares({"a": 3, "b": 1, "c": 0}) == {"a": 0.75, "b": 0.25}
    assert route_traffic.traffic_shares({"a": 0}) == {}
