# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Which InferencePool an endpoint picker (EPP) Deployment serves, read from its flags.

An EPP serves exactly one pool in one API group, and nothing in the pool or the
Deployment's metadata says which: only the container's command line does. v0.x
pickers take ``-poolName``/``-poolNamespace`` and watch the alpha group only;
v1.x pickers take ``--pool-name``/``--pool-namespace`` and ``--pool-group``,
which defaults to the GA group.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.refs import BackendKey


class ServedPool(namedtuple("ServedPool", ["container", "pool", "flag"])):
    """One EPP container, the pool it serves (a BackendKey) and the flag that named the pool."""

    __slots__ = ()


def go_flags(argv):
    """Flag name -> value, parsed the way Go's flag package reads a command line.

    ``-name value``, ``--name value``, ``-name=value`` and ``--name=value`` are
    the same flag; a flag followed by another flag (or by nothing) is a boolean.
    Words that are not flags (the binary, for instance) are skipped.
    """
    flags = {}
    words = [str(word) for word in argv]
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-") or word.strip("-") == "":
            continue
        name, has_value, value = word.lstrip("-").partition("=")
        if not has_value:
            if index < len(words) and not words[index].startswith("-"):
                value = words[index]
                index += 1
            else:
                value = "true"
        flags[name] = value
    return flags


def served_pools(deployment):
    """Yield a ServedPool for every container of a Deployment that runs as an EPP."""
    template_spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    for container in template_spec.get("containers") or []:
        flags = go_flags((container.get("command") or []) + (container.get("args") or []))
        if api.EPP_ALPHA_POOL_NAME_FLAG in flags:
            flag = api.EPP_ALPHA_POOL_NAME_FLAG
            group = api.ALPHA_GROUP
            namespace = flags.get(api.EPP_ALPHA_POOL_NAMESPACE_FLAG)
        elif api.EPP_POOL_NAME_FLAG in flags:
            flag = api.EPP_POOL_NAME_FLAG
            group = flags.get(api.EPP_POOL_GROUP_FLAG, api.GA_GROUP)
            namespace = flags.get(api.EPP_POOL_NAMESPACE_FLAG)
        else:
            continue
        kind = api.POOL_TYPES.get(group, api.GA_POOL).kind
        pool = BackendKey(group, kind, namespace or api.EPP_DEFAULT_POOL_NAMESPACE, flags[flag])
        yield ServedPool(container.get("name"), pool, flag)
