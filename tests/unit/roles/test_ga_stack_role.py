"""The ga_stack role's interface: argument specs, defaults and the collection's API facts agree."""

import re

import yaml

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from support import REPO

ROLE = REPO / "roles" / "ga_stack"
SPEC = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def test_every_option_is_prefixed_and_documented():
    for name, option in SPEC.items():
        assert name.startswith("ga_stack_"), name
        assert option.get("description"), name
        assert option.get("type"), name


def test_defaults_match_the_argument_specs():
    documented = dict((name, option["default"]) for name, option in SPEC.items() if "default" in option)
    assert DEFAULTS == documented
    required = [name for name, option in SPEC.items() if option.get("required")]
    assert required == ["ga_stack_detect"]


def test_defaults_are_the_collections_facts():
    # The role cannot import api.py, so its defaults repeat these values; this keeps them equal.
    assert DEFAULTS["ga_stack_priority_map"] == api.DEFAULT_PRIORITY_MAP
    assert DEFAULTS["ga_stack_chart_registry"] + "/inferencepool" == api.DEFAULT_CHART_REF
    assert DEFAULTS["ga_stack_download_url"] == api.GIE_DOWNLOAD_URL
    assert DEFAULTS["ga_stack_release"] == DEFAULTS["ga_stack_chart_version"] == api.GA_RELEASE


def test_every_variable_the_tasks_use_is_an_option_or_set_by_the_role():
    tasks = "".join(p.read_text() for p in (ROLE / "tasks").glob("*.yml"))
    # Not the collection's own plugins named ga_stack_* (inference_gateway.migration.ga_stack_releases).
    used = set(re.findall(r"(?<!migration\.)\bga_stack_[a-z_]+\b", tasks))
    set_by_role = set(["ga_stack_created", "ga_stack_selected_pools", "ga_stack_crd_plan", "ga_stack_rewrite_field",
                       "ga_stack_crds", "ga_stack_plans", "ga_stack_preview_only", "ga_stack_epps"])
    assert used - set(SPEC) - set_by_role == set()
    assert set(SPEC) - used == set()
    assert set_by_role - used == set()
