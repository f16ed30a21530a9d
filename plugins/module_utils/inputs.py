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
import re

from ansible.module_utils.common.validation import check_type_bool, check_type_int, check_type_list

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, releases
from ansible_collections.inference_gateway.migration.plugins.module_utils.backup_files import backup_problems
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.managers import accepted_managers
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import qualified, split_qualified
from ansible_collections.inference_gateway.migration.plugins.module_utils.plan import missing_pools, selectable_pools, validate_step_weights
from ansible_collections.inference_gateway.migration.plugins.module_utils.readiness import POOL_STATUS_MODES

try:
    import yaml
except ImportError:  # the filter reports the missing library
    yaml = None

MODES = ("helm", "manifests")
DEFAULT_KUBECONFIG = "~/.kube/config"
# Kubernetes object names: a Gateway's is a DNS subdomain, a namespace's a DNS label.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def release_errors(release):
    if release in releases.V1_RELEASES:
        return []
    if release in api.GIE_RELEASES_WITHOUT_EPP:
        return ["migration_release %s is not supported: from GIE %s on the endpoint picker, InferenceObjective and "
                "InferenceModelRewrite live in llm-d-router under the llm-d.ai API group, which this collection does "
                "not install. Set migration_release to %s (the last GIE release with them), then move to llm-d-router "
                "with its own procedure." % (release, api.GIE_RELEASES_WITHOUT_EPP[0], releases.V1_RELEASES[-1])]
    return ["migration_release %r is not a GIE release this collection knows. Set it to one of %s."
            % (release, ", ".join(releases.V1_RELEASES))]


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


def flag_errors(variable, value):
    """A yes/no variable (``-e name=true`` gives a string, which the roles read as Ansible reads booleans)."""
    try:
        check_type_bool(value)
    except TypeError:
        return ["%s %s is neither true nor false: set it to true or false (for example -e %s=true)."
                % (variable, _show(value), variable)]
    return []


def pool_status_mode_errors(mode):
    if mode is not None and mode not in POOL_STATUS_MODES:
        return ["verify_pool_status_mode %s is not one of %s: use tolerant (the default: a pool whose status no "
                "gateway writes passes with a warning) or strict (every pool must be Accepted by its gateway)."
                % (_show(mode), ", ".join(POOL_STATUS_MODES))]
    return []


def gateway_errors(name, namespace):
    errors = []
    if not isinstance(name, str) or not DNS_SUBDOMAIN.match(name) or len(name) > 253:
        errors.append("migration_gateway_name %s is not a Gateway name: give the name of the Gateway in front of "
                      "the pools, for example inference-gateway." % _show(name))
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
        errors.append("migration_gateway_namespace %s is not a namespace name: give the namespace of the Gateway in "
                      "front of the pools, for example default." % _show(namespace))
    return errors


def backup_dest_errors(dest):
    """A backup directory that cannot be created is refused now, not after preflight read the whole cluster."""
    if not isinstance(dest, str) or not dest.strip():
        return ["migration_backup_dest %s is not a directory path: give the directory the backups go to, for example "
                "~/inference-gateway-migration/backups." % _show(dest)]
    path = os.path.abspath(os.path.expanduser(dest))
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        why = "%s is a file, not a directory" % existing
    elif not os.access(existing, os.W_OK | os.X_OK):
        why = "this user may not write to %s" % existing
    else:
        return []
    return ["migration_backup_dest %s cannot hold backups: %s. Set migration_backup_dest to a directory this user "
            "can write to (it is created when missing)." % (_show(dest), why)]


def rollback_errors(inputs):
    """rollback.yml: a whole backup to restore from, and probe settings that can hold."""
    path = inputs.get("backup_path")
    if path in (None, ""):
        errors = ["rollback_backup_path is not set. Set rollback_backup_path to the backup directory to restore from, "
                  "the one holding index.yaml, e.g. -e rollback_backup_path=~/inference-gateway-migration/backups/"
                  "20260301T123005Z (the backup role prints it before every migration)."]
    else:
        problems, dummy = backup_problems(os.path.expanduser(str(path)))
        errors = ["rollback_backup_path %s: %s. Set rollback_backup_path to a whole backup directory (<dest>/<UTC "
                  "timestamp>, the one the backup role printed), not a .partial one." % (_show(path), "; ".join(problems))
                  ] if problems else []
    for variable, key, unit in (("rollback_probe_retries", "probe_retries", "tries"),
                                ("rollback_route_wait_timeout", "route_wait_timeout", "seconds")):
        value = inputs.get(key)
        number = _as_int(value)
        if value is not None and (number is None or number < 1):
            errors.append("%s %s is not a whole number from 1 up: give a positive number of %s, or leave it unset for "
                          "the default." % (variable, _show(value), unit))
    url = inputs.get("endpoint_url")
    if url is not None and not re.match(r"^https?://[^/\s]+", str(url)):
        errors.append("rollback_endpoint_url %s is not an http:// or https:// URL: give the URL the probe sends its "
                      "completions to, for example http://203.0.113.10/v1/completions, or leave it unset to probe "
                      "the restored routes' Gateway." % _show(url))
    return errors


def fleet_errors(clusters):
    """Hosts of one play that reach the same cluster: an extra variable (-e) overrides every host's connection.

    ``clusters`` lists [host, kubeconfig, context] per host of the play.
    """
    by_target = {}
    for host, kubeconfig, context in clusters or []:
        target = (os.path.expanduser(kubeconfig) if kubeconfig else "", context or "")
        by_target.setdefault(target, []).append(host)
    return ["migration_kubeconfig and migration_context send hosts %s to the same cluster (kubeconfig %s, context %s): "
            "the migration would run there once per host and nowhere else. Give each host its own migration_kubeconfig "
            "or migration_context in the inventory, and do not pass them with -e, which overrides every host's."
            % (", ".join(hosts), kubeconfig or "the default", context or "the current one")
            for (kubeconfig, context), hosts in sorted(by_target.items()) if len(hosts) > 1]


def pool_selection_errors(detect, pools):
    """Entries of migration_pools that name no preview pool of the cluster, with the one meant when it is elsewhere."""
    found = sorted(qualified(pool) for pool in selectable_pools(detect))
    errors = []
    for wanted in missing_pools(detect, pools):
        name = wanted.partition("/")[2]
        elsewhere = [pool for pool in found if pool.partition("/")[2] == name]
        hint = ("; a preview pool of that name is in %s: write %s" % (
            ", ".join(pool.partition("/")[0] for pool in elsewhere), " or ".join(elsewhere))) if elsewhere else ""
        errors.append("migration_pools entry %s names no preview InferencePool of this cluster (its preview pools: %s)%s. "
                      "Set migration_pools to some of them, as namespace/name, or leave it unset to migrate every pool."
                      % (_show(wanted), ", ".join(found) or "none", hint))
    return errors


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
    """Every problem with the playbook inputs of ``path`` (zero_downtime, simple, verify, detect or rollback)."""
    env = inputs.get("env") or {}
    errors = kubeconfig_errors(inputs.get("kubeconfig"), inputs.get("context"), env)
    if path in ("zero_downtime", "simple", "verify", "rollback"):
        errors += pool_status_mode_errors(inputs.get("pool_status_mode"))
    if path == "rollback":
        errors += rollback_errors(inputs)
    if path in ("zero_downtime", "simple"):
        errors += fleet_errors(inputs.get("fleet"))
        errors += release_errors(inputs.get("release"))
        errors += mode_errors(inputs.get("mode"))
        errors += pool_errors(inputs.get("pools"))
        errors += gateway_errors(inputs.get("gateway_name"), inputs.get("gateway_namespace"))
        errors += accept_managed_errors(inputs.get("accept_managed_objects"))
        errors += flag_errors("migration_accept_model_name_changes", inputs.get("accept_model_name_changes"))
        errors += backup_dest_errors(inputs.get("backup_dest"))
    if path == "zero_downtime":
        errors += step_weight_errors(inputs.get("step_weights"))
        errors += pause_errors(inputs.get("pause_seconds"))
    return errors
