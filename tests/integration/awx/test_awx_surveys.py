"""The AWX survey specs in docs/awx/: AWX's shape, and every question a variable the playbook or its roles read.

A survey answer becomes an extra variable, which overrides everything; a question
whose variable nothing reads would be silently ignored, and one whose default
differs from the playbook's would change what the job does unasked.
"""

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
PLAYBOOKS = ("detect", "zero_downtime", "simple", "verify", "rollback")
QUESTION_TYPES = ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
TEXT_TYPES = ("text", "textarea", "password")
# Argument spec type -> the survey question types whose answers have that type.
SPEC_TYPES = {"int": ("integer",), "float": ("float", "integer"), "str": TEXT_TYPES + ("multiplechoice",),
              "list": ("multiselect",)}
ROLE_REFERENCE = re.compile(r"inference_gateway\.migration\.([a-z_]+)")
JINJA = re.compile(r"{{(.*?)}}", re.S)


def role_options(role):
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return dict((name, option) for entry in specs.values() for name, option in entry.get("options", {}).items())


def roles_run_by(text, seen=None):
    """The collection's roles a playbook or task text includes, and the roles those include, transitively."""
    seen = set() if seen is None else seen
    for role in ROLE_REFERENCE.findall(text):
        if role not in seen and (REPO / "roles" / role).is_dir():
            seen.add(role)
            roles_run_by("".join(p.read_text() for p in (REPO / "roles" / role / "tasks").glob("*.yml")), seen)
    return seen


def playbook_reads(text):
    """Variable name -> default of every variable the playbook reads in its templates or conditions."""
    plays = yaml.safe_load(text)
    expressions = JINJA.findall(text) + [str(task.get("when", "")) for play in plays
                                         for task in play.get("tasks", [])]
    names = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", " ".join(expressions)))
    defaults = dict((name, value) for play in plays for name, value in (play.get("vars") or {}).items())
    for name, argument in re.findall(r"\b([a-z_][a-z0-9_]*)\s*\|\s*default\(([^()]*)\)", text):
        try:
            defaults.setdefault(name, ast.literal_eval(argument))
        except ValueError:
            pass  # not a literal (omit, another variable): nothing a survey default could repeat
    return names, defaults


def is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def survey(playbook):
    return json.loads((REPO / "docs" / "awx" / ("survey-%s.json" % playbook)).read_text())


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_survey_has_the_awx_shape(playbook):
    spec = survey(playbook)
    assert isinstance(spec["name"], str) and spec["name"]
    assert isinstance(spec["description"], str)
    assert isinstance(spec["spec"], list) and spec["spec"]
    variables = [question["variable"] for question in spec["spec"]]
    assert len(variables) == len(set(variables)), variables
    for question in spec["spec"]:
        variable, kind, default = question["variable"], question["type"], question.get("default")
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable), variable
        assert question["question_name"] and isinstance(question.get("question_description", ""), str)
        assert kind in QUESTION_TYPES, (variable, kind)
        assert isinstance(question["required"], bool), variable
        if kind == "integer":
            assert all(is_integer(question[key]) for key in ("min", "max", "default")), variable
            assert question["min"] <= default <= question["max"], variable
        elif kind == "float":
            assert all(isinstance(question[key], (int, float)) and not isinstance(question[key], bool)
                       for key in ("min", "max", "default")), variable
            assert question["min"] <= default <= question["max"], variable
        elif kind in ("multiplechoice", "multiselect"):
            choices = question["choices"]
            choices = choices.split("\n") if isinstance(choices, str) else choices
            assert choices and all(isinstance(choice, str) and choice for choice in choices), variable
            chosen = default.split("\n") if kind == "multiselect" else [default]
            assert set(chosen) <= set(choices), variable
        else:
            assert isinstance(default, str) and is_integer(question["min"]) and is_integer(question["max"])
            assert not default or question["min"] <= len(default) <= question["max"], variable
            # Secrets come from credentials, never from a survey default.
            assert kind != "password" or not default, variable


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_survey_variable_is_read_by_the_playbook_or_one_of_its_roles(playbook):
    text = (REPO / "playbooks" / ("%s.yml" % playbook)).read_text()
    read, playbook_defaults = playbook_reads(text)
    options = dict((name, option) for role in roles_run_by(text) for name, option in role_options(role).items())
    for question in survey(playbook)["spec"]:
        variable, default = question["variable"], question.get("default")
        assert variable in read or variable in options, (
            "%s: %s is neither read by playbooks/%s.yml nor an option of the roles it runs" % (playbook, variable,
                                                                                               playbook))
        if variable in options:
            option = options[variable]
            assert question["type"] in SPEC_TYPES[option["type"]], (variable, option["type"])
            assert set(question.get("choices") or []) <= set(option.get("choices") or question.get("choices") or [])
            assert default == option.get("default"), (variable, default, option.get("default"))
        elif variable in playbook_defaults:
            expected = playbook_defaults[variable]
            assert default == (str(expected).lower() if isinstance(expected, bool) else expected), variable
