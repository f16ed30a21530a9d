"""The playbooks' defaults (playbooks/vars/migration_defaults.yml) are the collection's own facts."""

import yaml

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from support import REPO

DEFAULTS = yaml.safe_load((REPO / "playbooks/vars/migration_defaults.yml").read_text())["migration_defaults"]
ROLE_DEFAULTS = dict((role, yaml.safe_load((REPO / "roles" / role / "defaults/main.yml").read_text()))
                     for role in ("preflight", "ga_stack", "zero_downtime_migration", "verify"))


def test_release_and_download_defaults_are_the_api_facts():
    assert DEFAULTS["release"] == api.GA_RELEASE
    assert DEFAULTS["gie_download_url"] == api.GIE_DOWNLOAD_URL
    assert DEFAULTS["chart_registry"] == api.CHART_REGISTRY


def test_playbook_defaults_agree_with_the_roles_they_feed():
    assert DEFAULTS["release"] == ROLE_DEFAULTS["ga_stack"]["ga_stack_release"]
    assert DEFAULTS["mode"] == ROLE_DEFAULTS["ga_stack"]["ga_stack_mode"] == ROLE_DEFAULTS["preflight"]["preflight_mode"]
    assert DEFAULTS["step_weights"] == ROLE_DEFAULTS["preflight"]["preflight_step_weights"]
    # The probe's Gateway when a target names none; preflight checks the pools' own Gateways unless told more.
    assert DEFAULTS["gateway_name"] == ROLE_DEFAULTS["verify"]["verify_gateway_name"]
    assert ROLE_DEFAULTS["preflight"]["preflight_gateway_name"] == ""
    assert DEFAULTS["epp_image"] == ROLE_DEFAULTS["ga_stack"]["ga_stack_epp_image"]


def test_every_playbook_default_is_read_by_a_playbook():
    playbooks = "".join(p.read_text() for p in (REPO / "playbooks").glob("*.yml"))
    playbooks += (REPO / "playbooks/tasks/check_inputs.yml").read_text()
    unread = [name for name in DEFAULTS if "migration_defaults.%s" % name not in playbooks]
    assert unread == []
