"""The fleet filter: exposed under its documented name, refusing as a filter error."""

import inspect

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.inference_gateway.migration.plugins.filter.fleet import FilterModule
from ansible_collections.inference_gateway.migration.plugins.module_utils import fleet
from support import REPO

FILTER_DIR = REPO / "plugins" / "filter"
FILTERS = FilterModule().filters()


def test_fleet_summary_is_exposed_and_documented_with_its_parameters():
    assert sorted(FILTERS) == ["fleet_summary"]
    doc = yaml.safe_load((FILTER_DIR / "fleet_summary.yml").read_text())
    assert doc["DOCUMENTATION"]["name"] == "fleet_summary"
    assert doc["EXAMPLES"].strip() and doc["RETURN"]["_value"]["description"]
    parameters = list(inspect.signature(fleet.fleet_summary).parameters)
    assert sorted(doc["DOCUMENTATION"]["options"]) == sorted(["_input"] + parameters[1:])


def test_refusal_becomes_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="no cluster report"):
        FILTERS["fleet_summary"]({}, ["a"])
