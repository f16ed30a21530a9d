"""The conversion filters: exposed under their documented names, refusing as filter errors, usable in Jinja."""

import inspect
import json
import textwrap

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.inference_gateway.migration.plugins.filter.convert import FilterModule
from ansible_collections.inference_gateway.migration.plugins.filter.plan import FilterModule as PlanFilterModule
from ansible_collections.inference_gateway.migration.plugins.module_utils import api, convert
from support import REPO, run_playbook

FILTER_DIR = REPO / "plugins" / "filter"
FILTERS = FilterModule().filters()
# The GA stack's per-pool plan is a planning decision: its filters live with the other planning filters.
PLAN_FILTERS = PlanFilterModule().filters()
GA_STACK_FILTERS = dict(FILTERS, **dict((name, PLAN_FILTERS[name]) for name in ("ga_crd_plan", "ga_plan", "ga_stack_record")))


def test_filters_are_the_conversions_under_their_own_names():
    assert sorted(GA_STACK_FILTERS) == sorted([
        "v1_pool", "v1_pool_status", "ga_release_name", "epp_name", "ga_chart_values", "ga_manifests", "objective",
        "model_warnings", "model_rewrite", "ga_crd_plan", "ga_plan", "ga_stack_record"])
    assert FILTERS["ga_release_name"]("x-preview") == convert.ga_release_name("x-preview") == "x-ga"


@pytest.mark.parametrize("name", sorted(GA_STACK_FILTERS))
def test_each_filter_is_documented_with_its_parameters(name):
    doc = yaml.safe_load((FILTER_DIR / ("%s.yml" % name)).read_text())
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["EXAMPLES"].strip() and doc["RETURN"]["_value"]["description"]
    parameters = list(inspect.signature(GA_STACK_FILTERS[name]).parameters)
    assert sorted(doc["DOCUMENTATION"]["options"]) == sorted(["_input"] + parameters[1:])


def test_refusal_becomes_a_filter_error_with_the_message():
    with pytest.raises(AnsibleFilterError, match="is not an InferencePool"):
        FILTERS["v1_pool"]({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})


PLAYBOOK = textwrap.dedent("""
    - hosts: localhost
      gather_facts: false
      vars:
        pool:
          namespace: default
          name: vllm-llama3-8b-instruct-preview
          selector: {app: vllm-llama3-8b-instruct}
          target_port: 8000
          extension_ref: {group: "", kind: Service, name: vllm-llama3-8b-instruct-preview-epp, port: 9002,
                          failure_mode: FailOpen}
          helm_release: {name: vllm-llama3-8b-instruct-preview, namespace: default}
          models:
            - {name: food-review, model_name: food-review, criticality: Standard,
               target_models: [{name: food-review-1, weight: 90}, {name: food-review-2, weight: 10}]}
            - {name: base-model, model_name: base, criticality: null, target_models: []}
      tasks:
        - name: Emit what the filters make of a detect entry
          ansible.builtin.debug:
            msg:
              release: "{{ pool | inference_gateway.migration.ga_release_name }}"
              pool: "{{ pool | inference_gateway.migration.v1_pool(name='p-ga', epp_service='p-ga-epp') }}"
              objectives: "{{ pool.models | map('inference_gateway.migration.objective', 'p-ga',
                              namespace=pool.namespace, priority_map={'Standard': 5}) | list }}"
              rewrites: "{{ pool.models | map('inference_gateway.migration.model_rewrite', 'p-ga',
                            namespace=pool.namespace, field='split') | select | list }}"
              plan: "{{ pool | inference_gateway.migration.ga_plan(mode='manifests', release='v1.0.0') }}"
              # As the ga_stack role plans and records every pool: map with keyword arguments.
              records: "{{ [pool] | map('inference_gateway.migration.ga_plan', mode='helm', release='v1.3.0')
                           | map('inference_gateway.migration.ga_stack_record') | list }}"
        - name: A refusal fails the task with the conversion's message
          ansible.builtin.debug:
            msg: "{{ pool.models[0] | inference_gateway.migration.objective('p-ga', namespace='default',
                     priority_map={'Critical': 2}) }}"
          ignore_errors: true
""")


@pytest.fixture(scope="module")
def playbook_result(tmp_path_factory):
    playbook = tmp_path_factory.mktemp("filters") / "filters.yml"
    playbook.write_text(PLAYBOOK)
    completed = run_playbook(playbook, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "PATH": "/usr/bin:/bin"})
    tasks = json.loads(completed.stdout)["plays"][0]["tasks"]
    return [task["hosts"]["localhost"] for task in tasks]


def test_filters_work_in_jinja_with_positional_and_keyword_arguments(playbook_result):
    msg = playbook_result[0]["msg"]
    assert msg["release"] == "vllm-llama3-8b-instruct-ga"
    assert msg["pool"]["spec"]["endpointPickerRef"] == {"group": "", "kind": "Service", "name": "p-ga-epp",
                                                        "port": {"number": 9002}, "failureMode": "FailOpen"}
    assert [o["spec"].get("priority") for o in msg["objectives"]] == [5, None]
    assert [o["spec"]["poolRef"]["group"] for o in msg["objectives"]] == [api.GA_GROUP, api.GA_GROUP]
    assert msg["rewrites"][0]["spec"]["rules"][0]["split"][0] == {"modelRewrite": "food-review-1", "weight": 90}
    assert len(msg["rewrites"]) == 1
    kinds = [o["kind"] for o in msg["plan"]["manifests"]]
    assert "Deployment" in kinds and "InferencePool" in kinds
    assert len(msg["plan"]["warnings"]) == 1
    warnings = msg["records"][0].pop("warnings")
    assert warnings and all("food-review" in warning for warning in warnings)
    assert msg["records"] == [{
        "alpha": "default/vllm-llama3-8b-instruct-preview", "v1": "default/vllm-llama3-8b-instruct-ga",
        "release": "vllm-llama3-8b-instruct-ga", "mode": "helm", "epp_deployment": "vllm-llama3-8b-instruct-ga-epp",
        "epp": {"namespace": "default", "name": "vllm-llama3-8b-instruct-ga-epp"},
        "objectives": ["food-review", "base-model"], "model_rewrites": []}]


def test_refusal_fails_the_task_naming_the_fix(playbook_result):
    failed = playbook_result[1]
    assert failed["failed"]
    assert "has criticality Standard" in failed["msg"] and "add Standard" in failed["msg"]
