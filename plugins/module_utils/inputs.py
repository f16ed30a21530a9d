# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The playbooks' inputs, checked before anything touches the cluster.

Every message names the ``migration_*`` variable the operator sets, the bad value and the fix, so a
typo never surfaces later as a failed filter, a role's whole argument spec or a cluster migrated to
something else than asked for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.module_utils.common.validation import check_type_int, check_type_list

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.managers import accepted_managers
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import split_qualified
from ansible_collections.inference_gateway.migration.plugins.module_utils.plan import validate_step_weights

try:
    import yaml
except ImportError:  # the filter reports the missing library
    yaml = None

MODES = ("helm", "manifests")
DEFAULT_KUBECONFIG = "~/.kube/config"


def release_errors(release):
    if release in api.GIE_V1_RELEASES:
        return []
    if release in api.GIE_RELEASES_WITHOUT_EPP:
        return ["migration_release %s is not supported: from GIE %s on the endpoint picker, InferenceObjective and "
                "InferenceModelRewrite live in llm-d-router under the llm-d.ai API group, which this collection does "
                "not install. Set migration_release to %s (the last GIE release with them), then move to llm-d-router "
                "with its own procedure." % (release, api.GIE_RELEASES_WITHOUT_EPP[0], api.GIE_V1_RELEASES[-1])]
    return ["migration_release %r is not a GIE release this collection knows. Set it to one of %s."
            % (release, ", ".join(api.GIE_V1_RELEASES))]


def _as_int(value):
    """``value`` as the role's argument spec reads an int (``-e key=value`` gives strings), or None."""
    if isinstance(value, bool):
        return None
    try:
        return check_type_int(value)
    except (TypeError, ValueError):
        return None


def step_weight_errors(weights):
    try:
        listed = check_type_list(weights) if weights not in (None, "") else []
    except TypeError:
        listed = None
    if listed is None:
        return ["migration_step_weights %s is not a list: give the v1 pool's percentage after each step, for example "
                "'[10, 50, 100]' as JSON in -e." % _show(weights)]
    as_ints = [_as_int(weight) for weight in listed]
    try:
        validate_step_weights([weight if number is None else number for weight, number in zip(listed, as_ints)])
    except MigrationError as e:
        return ["migration_step_weights %s: %s (the seed uses [50, 100])." % (_show(weights), e)]
    return []


def pause_errors(seconds):
    number = _as_int(seconds)
    if number is None or number < 0:
        return ["migration_pause_seconds %s is not a whole number of seconds from 0 up." % _show(seconds)]
    return []


def mode_errors(mode):
    if mode not in MODES:
        return ["migration_mode %s is not one of %s: use helm (the upstream chart, as the GKE guide does) or "
                "manifests (the collection renders the pool, EPP and RBAC itself)." % (_show(mode), ", ".join(MODES))]
    return []


def pool_errors(pools):
    if pools in (None, ""):
        return []
    if not isinstance(pools, list):
        return ["migration_pools %s is not a list: give the preview pools as a list of namespace/name, for example "
                "['default/vllm-llama3-8b-instruct']." % _show(pools)]
    errors = []
    for pool in pools:
        try:
            split_qualified(pool if isinstance(pool, str) else "")
        except MigrationError as e:
            errors.append("migration_pools entry %s: %s." % (_show(pool), e))
    return errors


def accept_managed_errors(accept):
    if accept is not None and not isinstance(accept, (bool, str, list)):
        return ["migration_accept_managed_objects %s is neither true, false nor a list of managers (%s)."
                % (_show(accept), ", ".join(api.OBJECT_MANAGERS))]
    unknown = [name for name in accepted_managers(accept) if name not in api.OBJECT_MANAGERS]
    if unknown:
        return ["migration_accept_managed_objects names %s, which is no manager the collection knows: give true, or a "
                "list of %s (as JSON in -e, for example '[\"argocd\"]')." % (", ".join(unknown), ", ".join(api.OBJECT_MANAGERS))]
    return []


def kubeconfig_paths(kubeconfig, env):
    """The kubeconfig files the kubernetes client reads, as kubernetes.core resolves them, and the variable naming them."""
    if kubeconfig:
        return [os.path.expanduser(kubeconfig)], "migration_kubeconfig"
    if env.get("K8S_AUTH_KUBECONFIG"):
        return [os.path.expanduser(env["K8S_AUTH_KUBECONFIG"])], "K8S_AUTH_KUBECONFIG"
    if env.get("KUBECONFIG"):
        return [p for p in env["KUBECONFIG"].split(os.pathsep) if p], "KUBECONFIG"
    return [os.path.expanduser(DEFAULT_KUBECONFIG)], None


def kubeconfig_errors(kubeconfig, context, env):
    """A kubeconfig that is not there and a context it does not define, named with where they came from.

    Credentials given as K8S_AUTH_HOST (with a token or certificates) need no kubeconfig at all.
    """
    if not kubeconfig and env.get("K8S_AUTH_HOST") and not env.get("K8S_AUTH_KUBECONFIG"):
        return []
    paths, variable = kubeconfig_paths(kubeconfig, env)
    missing = [p for p in paths if not os.path.isfile(p)]
    if variable and missing:
        return ["%s names %s, which does not exist or is not a file. Give the path of this cluster's kubeconfig "
                "(or leave it unset to use KUBECONFIG or %s)." % (variable, ", ".join(missing), DEFAULT_KUBECONFIG)]
    if missing and not context:
        return []  # nothing given: the client's own error (no configuration found) is the right one
    if not context:
        return []
    contexts = []
    for path in paths:
        if path in missing:
            continue
        contexts.extend(_context_names(path))
    if context not in contexts:
        return ["migration_context %r is not a context of %s (contexts there: %s). Set migration_context to one of "
                "them, or migration_kubeconfig to the file that defines it."
                % (context, ", ".join(paths), ", ".join(sorted(set(contexts))) or "none")]
    return []


def _context_names(path):
    try:
        with open(path) as handle:
            config = yaml.safe_load(handle) or {}
    except (IOError, OSError, yaml.YAMLError):
        return []
    return [c.get("name") for c in config.get("contexts") or [] if isinstance(c, dict)]


def _show(value):
    return repr(value) if isinstance(value, str) else str(value)


def migration_input_errors(inputs, path):
    """Every problem with the playbook inputs of ``path`` (zero_downtime, simple, verify or detect)."""
    env = inputs.get("env") or {}
    errors = kubeconfig_errors(inputs.get("kubeconfig"), inputs.get("context"), env)
    if path in ("zero_downtime", "simple"):
        errors += release_errors(inputs.get("release"))
        errors += mode_errors(inputs.get("mode"))
        errors += pool_errors(inputs.get("pools"))
        errors += accept_managed_errors(inputs.get("accept_managed_objects"))
    if path == "zero_downtime":
        errors += step_weight_errors(inputs.get("step_weights"))
        errors += pause_errors(inputs.get("pause_seconds"))
    return errors
