import random

import pytest
from sandbox_fakes import NEW, OLD, alpha_stack, pool_ref, route, snapshot

from igw_sandbox.gateway import programme, routing


@pytest.mark.parametrize("match, path, expected", [
    ({"type": "PathPrefix", "value": "/v1"}, "/v1/completions", True),
    ({"type": "PathPrefix", "value": "/v1"}, "/v1", True),
    ({"type": "PathPrefix", "value": "/v1/"}, "/v1/models", True),
    ({"type": "PathPrefix", "value": "/v1"}, "/v1x/completions", False),
    ({"type": "PathPrefix", "value": "/"}, "/anything", True),
    ({"type": "Exact", "value": "/v1/completions"}, "/v1/completions", True),
    ({"type": "Exact", "value": "/v1/completions"}, "/v1/completions/x", False),
    ({"type": "RegularExpression", "value": "/v1/(chat/)?completions"}, "/v1/chat/completions", True),
    ({"type": "RegularExpression", "value": "/v1/(chat/)?completions"}, "/v1/models", False),
])
def test_path_match_follows_gateway_api_semantics(match, path, expected):
    assert routing.path_matches(match, path) is expected


def test_header_method_and_query_matches_must_all_hold():
    match = {"method": "POST", "headers": [{"name": "X-Model", "value": "a"}],
             "queryParams": [{"name": "v", "type": "RegularExpression", "value": "[0-9]+"}]}
    assert routing.request_matches(match, "POST", "/x", {"v": "12"}, {"x-model": "a"})
    assert not routing.request_matches(match, "GET", "/x", {"v": "12"}, {"x-model": "a"})
    assert not routing.request_matches(match, "POST", "/x", {"v": "1a"}, {"x-model": "a"})
    assert not routing.request_matches(match, "POST", "/x", {"v": "12"}, {})


def _table(*routes):
    built = programme.build(snapshot(*alpha_stack(), *routes), "127.0.10.1")
    return built.tables[("127.0.10.1", 80)]


def _winner(table, path="/v1/completions", headers=None, method="POST", host="127.0.10.1"):
    candidate = routing.select(table, host, method, path, {}, headers or {})
    return candidate and (candidate.rule.route[1], candidate.rule.index)


def _rule(path=None, path_type="PathPrefix", headers=None, method=None):
    match = {}
    if path:
        match["path"] = {"type": path_type, "value": path}
    if headers:
        match["headers"] = [{"name": k, "value": v} for k, v in headers.items()]
    if method:
        match["method"] = method
    return {"matches": [match], "backendRefs": [pool_ref("vllm-llama3-8b-instruct-preview")]}


def test_precedence_exact_then_longest_prefix_then_method_then_headers():
    table = _table(route("r", [_rule("/"), _rule("/v1"), _rule("/v1/completions", "Exact"),
                               _rule("/v1", headers={"x-a": "1"}), _rule("/v1", method="POST")]))
    assert _winner(table) == ("r", 2)
    assert _winner(table, "/v1/models", headers={"x-a": "1"}) == ("r", 4)  # method beats headers
    assert _winner(table, "/v1/models", method="GET", headers={"x-a": "1"}) == ("r", 3)
    assert _winner(table, "/v1/models", method="GET") == ("r", 1)
    assert _winner(table, "/other") == ("r", 0)


def test_ties_go_to_the_oldest_route_then_by_name_then_rule_order():
    table = _table(route("b-new", [_rule("/v1")], created=NEW), route("c-old", [_rule("/v1")], created=OLD),
                   route("a-old", [_rule("/v1"), _rule("/v1")], created=OLD))
    assert _winner(table) == ("a-old", 0)


def test_most_specific_hostname_wins_before_rule_precedence():
    table = _table(route("exact", [_rule("/")], hostnames=["llm.example.com"]),
                   route("wild", [_rule("/v1/completions", "Exact")], hostnames=["*.example.com"]),
                   route("any", [_rule("/v1/completions", "Exact")]))
    assert _winner(table, host="llm.example.com") == ("exact", 0)
    assert _winner(table, host="other.example.com") == ("wild", 0)
    assert _winner(table, host="127.0.10.1") == ("any", 0)


def test_no_matching_rule_selects_nothing():
    assert _winner(_table(route("r", [_rule("/v1/models", "Exact")]))) is None


def _weighted(*weights):
    return [routing.WeightedBackend(w, name, ()) for name, w in zip("abcdef", weights)]


def test_weighted_choice_is_proportional_and_never_picks_weight_zero():
    rng = random.Random(7)
    counts = {"a": 0, "b": 0, "c": 0}
    for _draw in range(4000):
        counts[routing.choose_weighted(_weighted(3, 1, 0), rng).backend] += 1
    assert counts["c"] == 0
    assert 0.70 < counts["a"] / 4000 < 0.80


def test_weighted_choice_with_only_zero_weights_or_no_backends_is_none():
    assert routing.choose_weighted(_weighted(0, 0), random.Random(1)) is None
    assert routing.choose_weighted([], random.Random(1)) is None


def test_request_header_modifier_sets_adds_and_removes():
    headers = {"x-keep": "1", "x-drop": "2", "x-list": "a"}
    routing.apply_header_filters([{"type": "RequestHeaderModifier", "requestHeaderModifier": {
        "set": [{"name": "X-Gateway-Model-Name-Rewrite", "value": "food-review"}],
        "add": [{"name": "x-list", "value": "b"}], "remove": ["X-Drop"]}},
        {"type": "URLRewrite", "urlRewrite": {}}], headers)
    assert headers == {"x-keep": "1", "x-list": "a,b", "x-gateway-model-name-rewrite": "food-review"}
