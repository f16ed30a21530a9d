from ansible_collections.inference_gateway.migration.plugins.module_utils import api, leftovers, objects

UNSELECTED_POOL = {"namespace": "team-a", "name": "other-preview"}
ITS_MODEL = {"namespace": "team-a", "name": "chat", "pool_ref": {"group": api.ALPHA_GROUP, "name": "other-preview"}}
STRAY_MODEL = {"namespace": "team-b", "name": "stray", "pool_ref": {"group": api.ALPHA_GROUP, "name": "gone"}}


def test_nothing_left_says_nothing():
    assert leftovers.preview_leftovers({"alpha_pools": [], "inference_models": []}) == []
    assert leftovers.leftovers_message([]) == ""


def test_a_pool_the_run_did_not_select_and_its_model_are_named_with_how_to_migrate_them():
    found = leftovers.preview_leftovers({"alpha_pools": [UNSELECTED_POOL], "inference_models": [ITS_MODEL]})
    assert [(f["kind"], f["namespace"], f["name"]) for f in found] == [
        ("InferencePool", "team-a", "other-preview"), ("InferenceModel", "team-a", "chat")]
    assert "did not migrate" in found[0]["why"] and "team-a/other-preview in migration_pools" in found[0]["fix"]
    assert "team-a/other-preview, which this run did not migrate" in found[1]["why"]


def test_a_model_whose_pool_is_gone_is_named_with_the_command_that_deletes_it():
    (found,) = leftovers.preview_leftovers({"alpha_pools": [], "inference_models": [STRAY_MODEL]})
    assert (found["kind"], found["namespace"], found["name"]) == ("InferenceModel", "team-b", "stray")
    assert "team-b/gone" in found["why"] and "does not exist" in found["why"]
    assert "kubectl delete inferencemodels.inference.networking.x-k8s.io stray -n team-b" in found["fix"]


def test_the_message_says_the_crds_were_kept_names_every_object_and_what_to_do():
    message = leftovers.leftovers_message(leftovers.preview_leftovers(
        {"alpha_pools": [UNSELECTED_POOL], "inference_models": [STRAY_MODEL]}))
    assert message.startswith("The preview CRDs (%s) were kept: 2 preview object(s) remain" % ", ".join(api.ALPHA_CRDS))
    assert "InferencePool team-a/other-preview" in message and "InferenceModel team-b/stray" in message
    assert "run the playbook again" in message


def test_qualified_names():
    assert objects.qualified_names([UNSELECTED_POOL, STRAY_MODEL]) == ["team-a/other-preview", "team-b/stray"]
