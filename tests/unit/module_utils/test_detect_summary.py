import re

from ansible_collections.inference_gateway.migration.plugins.module_utils import detect_summary

ALPHA = {"namespace": "default", "name": "llama-preview", "phase": "shifting",
         "routes": [{"rules": [{"alpha_weight": 50, "ga_weight": 50}]}],
         "ga_counterpart": {"namespace": "default", "name": "llama-ga"},
         "models": [{"name": "a"}, {"name": "b"}], "epp": {"ready": True, "service_found": True}}
V1 = {"namespace": "default", "name": "llama-ga", "phase": None, "routes": [], "migrated_from": "default/llama-preview",
      "epp": {"ready": False, "service_found": True}}
DETECT = {
    "alpha_pools": [ALPHA], "v1_pools": [V1], "migration_needed": True,
    "summary": {"alpha_pools": 1, "inference_models": 3, "v1_pools": 1, "objectives": 0},
    "server_version": {"git_version": "v1.33.1-gke.100"}, "gke_ships_ga_pool_crd": False,
    "crd_plan": {"install": ["inferenceobjectives.inference.networking.x-k8s.io"], "keep_managed": []},
    "orphans": {"models": [{"namespace": "team-b", "name": "stray",
                            "pool_ref": {"group": "inference.networking.x-k8s.io", "name": "gone"}}],
                "routes": [{"namespace": "default", "name": "llm-route", "rule": 1,
                            "backend": {"group": "inference.networking.x-k8s.io", "kind": "InferencePool",
                                        "namespace": "default", "name": "old", "weight": 0}}]},
    "warnings": ["w1", "w2"],
}


def test_the_table_has_a_row_per_pool_in_aligned_columns():
    lines = detect_summary.detect_summary(DETECT, "/r/d.json").split("\n")
    assert re.match(r"API\s+POOL\s+PHASE\s+ALPHA/GA WEIGHT\s+PAIRED WITH\s+MODELS\s+EPP$", lines[0])
    assert re.match(r"alpha\s+default/llama-preview\s+shifting\s+50/50\s+default/llama-ga\s+2\s+ready$", lines[1])
    assert re.match(r"v1\s+default/llama-ga\s+-\s+no route\s+default/llama-preview\s+-\s+not ready$", lines[2])
    assert lines[1].index("default/llama-preview") == lines[0].index("POOL") == lines[2].index("default/llama-ga")


def test_the_verdict_and_every_orphan_by_name():
    lines = detect_summary.detect_summary(DETECT, "/r/d.json").split("\n")
    assert ("migration needed: yes (preview pools: 1, InferenceModels: 3, v1 pools: 1, InferenceObjectives: 0)"
            in lines)
    assert "orphans: 2" in lines
    assert ("  orphan InferenceModel team-b/stray: its InferencePool team-b/gone (inference.networking.x-k8s.io) "
            "does not exist") in lines
    assert ("  orphan backendRef: HTTPRoute default/llm-route rule 1 -> InferencePool default/old "
            "(inference.networking.x-k8s.io, weight 0) does not exist") in lines
    assert "warnings: 2 (shown above)" in lines and lines[-1] == "full result: /r/d.json"


def test_an_empty_cluster_says_so():
    lines = detect_summary.detect_summary({"summary": {}, "crd_plan": {}}, "/r/d.json").split("\n")
    assert lines[1] == "(no InferencePool in either API group)"
    assert "orphans: none" in lines and "CRDs to install: none; platform-managed, keep: none" in lines
