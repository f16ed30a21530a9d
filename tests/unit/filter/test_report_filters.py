"""The report filters: exposed under their documented names, each documented with its parameters."""

import inspect
from pathlib import Path

import pytest
import yaml

from ansible_collections.inference_gateway.migration.plugins.filter import report as report_filters

FILTER_DIR = Path(__file__).resolve().parents[3] / "plugins" / "filter"
FILTERS = report_filters.FilterModule().filters()


def test_the_report_filters_are_exposed():
    assert sorted(FILTERS) == ["cluster_report", "detect_summary", "grant_changes", "leftovers_message", "preview_leftovers",
                               "qualified_names", "route_change", "split_routes", "with_written_weights"]


@pytest.mark.parametrize("function", report_filters.FILTERS, ids=lambda f: f.__name__)
def test_each_filter_is_documented_with_its_parameters(function):
    doc = yaml.safe_load((FILTER_DIR / (function.__name__ + ".yml")).read_text())
    assert doc["DOCUMENTATION"]["name"] == function.__name__
    assert doc["EXAMPLES"].strip() and doc["RETURN"]["_value"]["description"]
    parameters = list(inspect.signature(function).parameters)
    assert sorted(doc["DOCUMENTATION"]["options"]) == sorted(["_input"] + parameters[1:])
