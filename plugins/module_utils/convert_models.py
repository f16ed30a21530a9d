# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Pure conversions of an InferenceModel to its InferenceObjective and InferenceModelRewrite.

Like ``convert`` (the pools), each function accepts an object read from the
cluster or detect's summary of it, and gives its own output back unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, releases
from ansible_collections.inference_gateway.migration.plugins.module_utils.convert import (
    migrated_metadata,
    own_metadata,
)
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import annotations_of, is_type, model_rewrites

MATCH_EXACT = "Exact"


class ModelFacts(namedtuple("ModelFacts", [
        "namespace", "name", "model_name", "criticality", "target_models", "priority", "labels", "annotations",
        "migrated_from", "is_objective"])):
    """An InferenceModel, detect's entry for one, or an InferenceObjective made from one."""

    __slots__ = ()

    @property
    def qualified_name(self):
        return "%s/%s" % (self.namespace, self.name)


def _target_models(targets, what):
    result = []
    for target in targets or []:
        if not isinstance(target, dict) or not target.get("name"):
            raise MigrationError("%s has a targetModels entry without a name: %r" % (what, target))
        result.append({"name": target["name"], "weight": target.get("weight")})
    return result


def model_facts(source, namespace=None):
    """ModelFacts of an InferenceModel, a detect ``models`` entry or an InferenceObjective.

    ``namespace`` is used when the source does not carry one.
    """
    if not isinstance(source, dict):
        raise MigrationError("expected an InferenceModel or a models entry of inferencepool_detect, got %r"
                             % (source,))
    if "apiVersion" not in source:
        namespace = source.get("namespace") or namespace
        if not namespace:
            raise MigrationError("InferenceModel %s from detect: pass the pool's namespace along with the model"
                                 % source.get("name"))
        what = "InferenceModel %s/%s" % (namespace, source.get("name"))
        return ModelFacts(namespace, source["name"], source.get("model_name"), source.get("criticality"),
                          _target_models(source.get("target_models"), what), None, {}, {},
                          "%s/%s" % (namespace, source["name"]), False)
    metadata = source["metadata"]
    namespace = metadata.get("namespace") or namespace
    labels, annotations = own_metadata(metadata)
    spec = source.get("spec") or {}
    what = "%s %s/%s" % (source.get("kind"), namespace, metadata["name"])
    if is_type(source, api.INFERENCE_MODEL):
        return ModelFacts(namespace, metadata["name"], spec.get("modelName"), spec.get("criticality"),
                          _target_models(spec.get("targetModels"), what), None, labels, annotations,
                          "%s/%s" % (namespace, metadata["name"]), False)
    if is_type(source, api.INFERENCE_OBJECTIVE):
        return ModelFacts(namespace, metadata["name"], annotations_of(source).get(api.MODEL_NAME_ANNOTATION), None, [],
                          spec.get("priority"), labels, annotations,
                          (metadata.get("annotations") or {}).get(api.MIGRATED_FROM_ANNOTATION), True)
    raise MigrationError("%s is not an InferenceModel or an InferenceObjective" % what)


def validate_priority_map(priority_map):
    """The criticality-to-priority map, checked: integer priorities, or null to leave priority unset."""
    if priority_map is None:
        return dict(api.DEFAULT_PRIORITY_MAP)
    if not isinstance(priority_map, dict):
        raise MigrationError("the priority map must map criticality names to integers, got %r" % (priority_map,))
    for criticality, priority in priority_map.items():
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise MigrationError("the priority map gives criticality %s the priority %r; use an integer "
                                 "(negative means shed under saturation) or null for no priority"
                                 % (criticality, priority))
    return dict(priority_map)


def priority_of(facts, priority_map=None):
    """The InferenceObjective priority for a model; None when the model sets no criticality."""
    if facts.is_objective:
        return facts.priority
    if facts.criticality is None:
        return None
    priorities = validate_priority_map(priority_map)
    if facts.criticality not in priorities:
        raise MigrationError("InferenceModel %s has criticality %s, which the priority map (%s) does not cover; "
                             "add %s: <integer> to it" % (facts.qualified_name, facts.criticality,
                                                          ", ".join(sorted(priorities)) or "empty",
                                                          facts.criticality))
    return priorities[facts.criticality]


def objective(source, pool_name, namespace=None, priority_map=None, names=None):
    """The InferenceObjective for an InferenceModel, pointing at the v1 pool ``pool_name``.

    ``poolRef.group`` is written out: the EPP only keeps objectives of its own
    pool group. The name is the model's unless ``names`` maps it to another.
    """
    facts = model_facts(source, namespace)
    spec = {"poolRef": {"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "name": pool_name}}
    priority = priority_of(facts, priority_map)
    if priority is not None:
        spec["priority"] = priority
    name = (names or {}).get(facts.name, facts.name)
    annotations = dict(facts.annotations, **({api.MODEL_NAME_ANNOTATION: facts.model_name} if facts.model_name else {}))
    return {
        "apiVersion": api.INFERENCE_OBJECTIVE.api_version,
        "kind": api.INFERENCE_OBJECTIVE.kind,
        "metadata": migrated_metadata(name, facts.namespace, facts.labels, annotations, facts.migrated_from),
        "spec": spec,
    }


def needs_rewrite(facts):
    """Whether the preview EPP changed the model name (or split it) for this model."""
    return model_rewrites(facts.model_name, facts.target_models)


def model_warnings(source, namespace=None):
    """What a model loses in v1, naming the v1 ways to keep it."""
    facts = model_facts(source, namespace)
    if facts.is_objective or not needs_rewrite(facts):
        return []
    targets = ", ".join(t["name"] if t["weight"] is None else "%s (weight %s)" % (t["name"], t["weight"])
                        for t in facts.target_models)
    return ["InferenceModel %s sends model %s to %s; v1 has no InferenceModel, so after the migration requests "
            "for %s reach the model servers unchanged. Keep the behaviour with an InferenceModelRewrite "
            "(GIE %s or later), the %s request header, HTTPRoute backendRef weights across pools, or Body-Based "
            "Routing (BBR) with HTTPRoute header matches."
            % (facts.qualified_name, facts.model_name, targets, facts.model_name,
               releases.MODEL_REWRITES_FROM, api.MODEL_NAME_REWRITE_HEADER)]


def _check_target_field(field):
    if field not in api.MODEL_REWRITE_TARGET_FIELDS:
        raise MigrationError("InferenceModelRewrite target field %r is not one of %s"
                             % (field, ", ".join(api.MODEL_REWRITE_TARGET_FIELDS)))


def _rewrite_rules_from_object(source, field):
    rules = []
    for rule in (source.get("spec") or {}).get("rules") or []:
        converted = dict((k, v) for k, v in rule.items() if k not in api.MODEL_REWRITE_TARGET_FIELDS)
        for spelling in api.MODEL_REWRITE_TARGET_FIELDS:
            if spelling in rule:
                converted[field] = rule[spelling]
        rules.append(converted)
    return rules


def model_rewrite(source, pool_name, namespace=None, field=api.MODEL_REWRITE_TARGET_FIELDS[0]):
    """The InferenceModelRewrite that keeps a model's name rewrite or weighted split; None when it has none.

    ``field`` is the rules' target list name of the installed CRD: ``targets``
    (v1.3+) or ``split`` (v1.2), as detect reports it in model_rewrite_targets_field.
    """
    _check_target_field(field)
    if isinstance(source, dict) and is_type(source, api.INFERENCE_MODEL_REWRITE):
        metadata = source["metadata"]
        labels, annotations = own_metadata(metadata)
        rules = _rewrite_rules_from_object(source, field)
        name, namespace = metadata["name"], metadata.get("namespace") or namespace
        migrated_from = (metadata.get("annotations") or {}).get(api.MIGRATED_FROM_ANNOTATION)
    else:
        facts = model_facts(source, namespace)
        if facts.is_objective or not needs_rewrite(facts):
            return None
        targets = []
        for target in facts.target_models:
            rewrite = {"modelRewrite": target["name"]}
            if target["weight"] is not None:
                rewrite["weight"] = target["weight"]
            targets.append(rewrite)
        rules = [{"matches": [{"model": {"type": MATCH_EXACT, "value": facts.model_name}}], field: targets}]
        name, namespace, labels, annotations = facts.name, facts.namespace, facts.labels, facts.annotations
        migrated_from = facts.migrated_from
    return {
        "apiVersion": api.INFERENCE_MODEL_REWRITE.api_version,
        "kind": api.INFERENCE_MODEL_REWRITE.kind,
        "metadata": migrated_metadata(name, namespace, labels, annotations, migrated_from),
        "spec": {"poolRef": {"group": api.GA_GROUP, "kind": api.GA_POOL.kind, "name": pool_name}, "rules": rules},
    }
