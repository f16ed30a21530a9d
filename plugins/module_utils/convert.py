# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Pure conversions from the preview (v1alpha2) stack to the GA (v1) stack.

Each function accepts what an operator or ``inferencepool_detect`` has: an
object read from the cluster, or detect's summary of it. Each also accepts its
own output and gives it back unchanged, so that a role run again (or resumed
half way) converges on the same objects instead of drifting.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, releases
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import (
    endpoint_picker_ref,
    extension_ref,
    group_of,
    helm_release,
    is_type,
    qualified_name,
)

# Labels and annotations that tools put on the preview objects. Copied onto a new
# object they would claim it for a Helm release or a kubectl state it is not part of.
TOOL_OWNED_PREFIXES = ("meta.helm.sh/", "helm.sh/", "app.kubernetes.io/", "kubectl.kubernetes.io/")

# The one Accepted reason the v1 API renamed; the others carry over.
V1_POOL_REASONS = {"NotSupportedByGateway": "NotSupportedByParent"}
# The alpha CRD's default condition; v1 has no Pending reason and no status default.
PENDING_REASON = "Pending"


# The chart provider whose GKE objects (HealthCheckPolicy, GCPBackendPolicy) the v1 stack gets.
GKE_PROVIDER = "gke"


class PoolFacts(namedtuple("PoolFacts", [
        "namespace", "name", "selector", "target_ports", "endpoint_picker", "release", "labels", "annotations",
        "migrated_from", "status"])):
    """An InferencePool of either group, or detect's entry for one, reduced to what conversions read.

    ``endpoint_picker`` is a dict with group, kind, name, port and failure_mode;
    ``release`` the Helm release that owns the pool (None without one).
    """

    __slots__ = ()

    @property
    def qualified_name(self):
        return "%s/%s" % (self.namespace, self.name)


def own_metadata(metadata):
    """The labels and annotations worth carrying to the GA objects."""

    def untooled(values):
        return dict((k, v) for k, v in (values or {}).items() if not k.startswith(TOOL_OWNED_PREFIXES))

    return untooled(metadata.get("labels")), untooled(metadata.get("annotations"))


def migrated_metadata(name, namespace, labels, annotations, migrated_from):
    labels = dict(labels or {}, **{api.MIGRATION_LABEL: api.MIGRATION_LABEL_VALUE})
    annotations = dict(annotations or {})
    if migrated_from:
        annotations[api.MIGRATED_FROM_ANNOTATION] = migrated_from
    return {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations}


def _ensure_port(port, what):
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise MigrationError("%s has target port %r; a port is a whole number from 1 to 65535" % (what, port))
    return port


def _checked_picker(ref, what):
    """detect's form of an endpoint picker reference (defaults explicit, 9002 for a Service), checked."""
    if not ref or not ref.get("name"):
        raise MigrationError("%s has no endpoint picker reference name; fix the pool's extensionRef" % what)
    return dict(ref)


def _require_selector(selector, what):
    if not selector:
        raise MigrationError("%s has an empty selector; a v1 pool needs the model-server labels to select" % what)
    return dict(selector)


def _facts_from_pool(pool):
    """PoolFacts of an InferencePool object of either group; the two differ only in where each fact sits."""
    metadata = pool["metadata"]
    spec = pool.get("spec") or {}
    where = qualified_name(pool)
    if is_type(pool, api.ALPHA_POOL):
        what = "alpha InferencePool %s" % where
        selector, ports, picker = spec.get("selector"), [spec.get("targetPortNumber")], extension_ref(pool)
        migrated_from = where
        status = v1_pool_status(pool.get("status"))
    else:
        what = "InferencePool %s" % where
        selector = (spec.get("selector") or {}).get("matchLabels")
        ports = [p.get("number") for p in spec.get("targetPorts") or []]
        picker = endpoint_picker_ref(pool)
        migrated_from = (metadata.get("annotations") or {}).get(api.MIGRATED_FROM_ANNOTATION)
        status = pool.get("status") or {}
    labels, annotations = own_metadata(metadata)
    return PoolFacts(
        namespace=metadata.get("namespace"), name=metadata["name"],
        selector=_require_selector(selector, what),
        target_ports=[_ensure_port(port, what) for port in ports],
        endpoint_picker=_checked_picker(picker, what),
        release=(helm_release(pool) or {}).get("name"),
        labels=labels, annotations=annotations, migrated_from=migrated_from, status=status,
    )


def _facts_from_detect(entry):
    what = "alpha InferencePool %s/%s" % (entry.get("namespace"), entry.get("name"))
    if not entry.get("namespace") or not entry.get("name"):
        raise MigrationError("%s: a detect alpha_pools entry needs namespace and name; pass the entry of "
                             "inferencepool_detect's result unchanged" % what)
    return PoolFacts(
        namespace=entry["namespace"], name=entry["name"],
        selector=_require_selector(entry.get("selector"), what),
        target_ports=[_ensure_port(entry.get("target_port"), what)],
        endpoint_picker=_checked_picker(entry.get("extension_ref"), what),
        release=(entry.get("helm_release") or {}).get("name"),
        labels={}, annotations={},
        migrated_from="%s/%s" % (entry["namespace"], entry["name"]),
        status={},
    )


def pool_facts(source):
    """PoolFacts of an alpha InferencePool, a v1 InferencePool or a detect ``alpha_pools`` entry."""
    if not isinstance(source, dict):
        raise MigrationError("expected an InferencePool or an alpha_pools entry of inferencepool_detect, got %r"
                             % (source,))
    if "apiVersion" not in source:
        return _facts_from_detect(source)
    if is_type(source, api.ALPHA_POOL) or is_type(source, api.GA_POOL):
        return _facts_from_pool(source)
    raise MigrationError("%s %s is not an InferencePool of %s or %s" % (
        source.get("kind"), (source.get("metadata") or {}).get("name"), api.ALPHA_GROUP, api.GA_GROUP))


def v1_pool_status(alpha_status):
    """The v1 ``status`` for an alpha pool's: ``parent`` becomes ``parents``.

    The v0.5 synthetic parent (kind Status, "not attached") and the CRD's default
    Pending condition have no v1 equivalent and are dropped; v0.3/v0.4 parentRefs
    (core ObjectReferences with apiVersion) become Gateway API ParentReferences.
    """
    parents = []
    for entry in (alpha_status or {}).get("parent") or []:
        ref = entry.get("parentRef") or {}
        if ref.get("kind") == api.SYNTHETIC_PARENT_KIND:
            continue
        group = ref["group"] if "group" in ref else group_of(ref) or api.GATEWAY_GROUP
        parent_ref = {"group": group, "kind": ref.get("kind") or api.GATEWAY.kind, "name": ref.get("name")}
        if ref.get("namespace"):
            parent_ref["namespace"] = ref["namespace"]
        conditions = [dict(c, reason=V1_POOL_REASONS.get(c.get("reason"), c.get("reason")))
                      for c in entry.get("conditions") or [] if c.get("reason") != PENDING_REASON]
        parents.append({"parentRef": parent_ref, "conditions": conditions})
    return {"parents": parents} if parents else {}


def v1_pool(source, name=None, epp_service=None, status=False):
    """The v1 InferencePool for an alpha pool (mapping table of gie-api.md §3).

    ``name`` renames the pool (default: the same name; the two groups do not
    clash). ``epp_service`` points the pool at another endpoint picker Service
    on the default port, as a side-by-side GA stack needs: a v0.x EPP cannot
    serve a v1 pool. ``status`` keeps the converted status (for reports; the
    API server ignores status on create).
    """
    facts = pool_facts(source)
    picker = dict(facts.endpoint_picker)
    if epp_service:
        picker.update(group=api.CORE_GROUP, kind=api.SERVICE.kind, name=epp_service, port=api.DEFAULT_EPP_PORT)
    picker_ref = {"group": picker["group"], "kind": picker["kind"], "name": picker["name"]}
    if picker["port"] is not None:
        picker_ref["port"] = {"number": picker["port"]}
    picker_ref["failureMode"] = picker["failure_mode"]
    pool = {
        "apiVersion": api.GA_POOL.api_version,
        "kind": api.GA_POOL.kind,
        "metadata": migrated_metadata(name or facts.name, facts.namespace, facts.labels, facts.annotations,
                                      facts.migrated_from),
        "spec": {
            "selector": {"matchLabels": dict(facts.selector)},
            "targetPorts": [{"number": port} for port in facts.target_ports],
            "endpointPickerRef": picker_ref,
        },
    }
    if status and facts.status:
        pool["status"] = facts.status
    return pool


def ga_release_name(source):
    """The release (and v1 pool) name of the GA stack: ``-preview`` becomes ``-ga``, otherwise ``-ga`` is added.

    ``source`` is a release name, or a pool (its Helm release, else its name). A
    v1 pool is already the GA stack and keeps its name.
    """
    if isinstance(source, str):
        base = source
    else:
        facts = pool_facts(source)
        if is_type(source, api.GA_POOL):
            return facts.name
        base = facts.release or facts.name
    if base.endswith(api.PREVIEW_RELEASE_SUFFIX):
        base = base[:-len(api.PREVIEW_RELEASE_SUFFIX)]
    return base + api.GA_RELEASE_SUFFIX


def ga_chart_values(source, provider=GKE_PROVIDER, release=api.GA_RELEASE, epp_image=None, epp_flags=None):
    """Values for the ``inferencepool`` chart of ``release`` that select the same pods as the alpha pool.

    Where the release's GKE HealthCheckPolicy reads targetPortNumber (to v1.4) it is set beside targetPorts.
    failureMode is always the preview pool's (FailClose when it gives none): the charts from v1.4 write FailOpen
    when the values give none, and those before write none on a v1 pool (ga_stack patches it on). ``epp_image``
    (a registry path without tag) and ``epp_flags`` (name -> value) are written in the release's own keys.
    """
    facts = pool_facts(source)
    row = releases.facts(release)
    pool = {
        "modelServers": {"matchLabels": dict(facts.selector)},
        "targetPorts": [{"number": port} for port in facts.target_ports],
    }
    if row.health_check_port_value:
        pool[row.health_check_port_value] = facts.target_ports[0]
    extension = {"failureMode": facts.endpoint_picker["failure_mode"]}
    image = releases.image_values(release, epp_image)
    if image:
        extension["image"] = image
    flags = releases.flag_values(release, epp_flags)
    if flags is not None:
        extension["flags"] = flags
    return {"inferencePool": pool, "inferenceExtension": extension, "provider": {"name": provider}}
