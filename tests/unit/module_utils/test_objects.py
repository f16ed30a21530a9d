"""Who last wrote an object, from metadata.managedFields, and the identity detect reports."""

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, objects


def entry(manager, time, fields, subresource=None, operation="Update"):
    found = {"manager": manager, "operation": operation, "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        found["subresource"] = subresource
    return found


ROUTE = {"metadata": {"namespace": "default", "name": "llm-route", "uid": "u-1",
                      "creationTimestamp": "2026-12-04T09:00:00Z", "managedFields": [
                          entry("kubectl-client-side-apply", "2026-12-04T09:00:00Z", {"f:spec": {"f:rules": {}}}),
                          entry("argocd-controller", "2026-12-04T10:00:03Z", {"f:spec": {"f:rules": {}}}),
                          entry("hostname-bot", "2026-12-04T10:00:05Z", {"f:spec": {"f:hostnames": {}}}),
                          entry(api.FIELD_MANAGER, "2026-12-04T10:00:09Z", {"f:spec": {"f:rules": {}}}),
                          entry("gateway", "2026-12-04T10:00:10Z", {"f:status": {}}, subresource="status")]}}


def test_the_latest_other_writer_of_a_field_is_named():
    assert objects.last_writer(ROUTE, owning=("f:spec", "f:rules")) == (
        "field manager argocd-controller (Update at 2026-12-04T10:00:03Z)")


def test_the_latest_other_writer_of_the_object_is_named_and_status_writes_do_not_count():
    assert objects.last_writer(ROUTE) == "field manager hostname-bot (Update at 2026-12-04T10:00:05Z)"


def test_only_the_migration_or_nothing_recorded_names_no_one():
    only_us = {"metadata": {"managedFields": [entry(api.FIELD_MANAGER, "2026-12-04T10:00:09Z", {"f:spec": {}})]}}
    assert objects.last_writer(only_us) is None
    assert objects.last_writer({"metadata": {}}) is None


def test_identity_is_uid_creation_time_and_last_writer():
    assert objects.identity(ROUTE) == {"uid": "u-1", "created": "2026-12-04T09:00:00Z",
                                       "last_writer": "field manager hostname-bot (Update at 2026-12-04T10:00:05Z)"}
