# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Who else manages an object, from its labels, annotations and ownerReferences, and what kubectl last applied.

A route, pool, InferenceModel or endpoint picker that Argo CD, Flux or an owning controller
reconciles is put back by that manager after the migration changed it: the migration must go
through the manager, or the manager must be told to stand still first. An object last written
with client-side ``kubectl apply`` keeps the applied manifest in an annotation; if that manifest
still names a preview pool, the next ``kubectl apply`` of the same source undoes the migration.

Rules (the evidence each manager leaves):

- ``argocd``: the annotation ``argocd.argoproj.io/tracking-id`` (annotation tracking), or the label
  ``app.kubernetes.io/instance`` (label tracking) on an object without Helm's release annotations.
  Helm charts set that label to the release name too; a chart that Argo CD renders carries no
  ``meta.helm.sh/release-*`` annotation (Argo CD runs ``helm template``), one that ``helm install``
  wrote does. The annotation is the reliable signal.
- ``flux``: the labels ``kustomize.toolkit.fluxcd.io/name`` and ``/namespace`` (a Flux Kustomization
  applied it) or ``helm.toolkit.fluxcd.io/name`` and ``/namespace`` (a Flux HelmRelease's release).
- ``owner``: any ownerReference; the garbage collector deletes the object with its owner, and a
  controlling owner (``controller: true``) reconciles it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, refs
from ansible_collections.inference_gateway.migration.plugins.module_utils.objects import (
    annotations_of,
    helm_release,
    is_type,
    labels_of,
    model_pool_key,
    name_of,
    namespace_of,
)


def _manager(name, by, evidence, fix):
    return {"name": name, "by": by, "evidence": evidence, "fix": fix}


def _argocd(obj):
    annotations, labels = annotations_of(obj), labels_of(obj)
    tracking = annotations.get(api.ARGOCD_TRACKING_ANNOTATION)
    if tracking:
        # <application>:<group>/<kind>:<namespace>/<name>; the application may be written <namespace>_<name>.
        application = tracking.split(":", 1)[0]
        evidence = "annotation %s=%s" % (api.ARGOCD_TRACKING_ANNOTATION, tracking)
    elif labels.get(api.ARGOCD_INSTANCE_LABEL) and helm_release(obj) is None:
        application = labels[api.ARGOCD_INSTANCE_LABEL]
        evidence = "label %s=%s without a Helm release annotation" % (api.ARGOCD_INSTANCE_LABEL, application)
    else:
        return None
    return _manager(
        api.MANAGER_ARGOCD, "Argo CD Application %s" % application, evidence,
        "disable automated sync and self-heal of Argo CD Application %s (argocd app set %s --sync-policy none) "
        "or change its source in Git to the v1 API first; otherwise Argo CD puts the preview objects back"
        % (application, application))


# Each Flux controller labels what it applies with its object's name and namespace.
_FLUX_OWNERS = (
    ("Kustomization", api.FLUX_KUSTOMIZATION_NAME_LABEL, api.FLUX_KUSTOMIZATION_NAMESPACE_LABEL,
     "suspend it (flux suspend kustomization {name} -n {namespace}) or change its source in Git to the v1 API "
     "first; otherwise Flux puts the preview objects back"),
    ("HelmRelease", api.FLUX_HELMRELEASE_NAME_LABEL, api.FLUX_HELMRELEASE_NAMESPACE_LABEL,
     "migrate through the HelmRelease (its chart and values in Git), or suspend it first "
     "(flux suspend helmrelease {name} -n {namespace}); otherwise Flux reinstalls the preview release"),
)


def _flux(obj):
    labels = labels_of(obj)
    found = []
    for kind, name_label, namespace_label, advice in _FLUX_OWNERS:
        name = labels.get(name_label)
        if name:
            namespace = labels.get(namespace_label) or namespace_of(obj)
            found.append(_manager(
                api.MANAGER_FLUX, "Flux %s %s/%s" % (kind, namespace, name),
                "labels %s, %s" % (name_label, namespace_label), advice.format(name=name, namespace=namespace)))
    return found


def _owners(obj):
    found = []
    for owner in obj["metadata"].get("ownerReferences") or []:
        controller = bool(owner.get("controller"))
        by = "%s %s%s" % (owner.get("kind"), owner.get("name"), " (its controller)" if controller else "")
        found.append(_manager(
            api.MANAGER_OWNER, by, "ownerReference %s/%s %s" % (owner.get("apiVersion"), owner.get("kind"), owner.get("name")),
            "migrate through %s %s (it %s), or remove the ownerReference first"
            % (owner.get("kind"), owner.get("name"),
               "reconciles this object and undoes changes" if controller else "takes this object with it when deleted")))
    return found


def managers_of(obj):
    """Every manager besides this migration that reconciles ``obj``: [{name, by, evidence, fix}], in a fixed order."""
    found = []
    argocd = _argocd(obj)
    if argocd:
        found.append(argocd)
    found.extend(_flux(obj))
    found.extend(_owners(obj))
    return found


def last_applied(obj):
    """The manifest client-side ``kubectl apply`` last wrote to ``obj``, or None (also when it is not readable JSON)."""
    text = annotations_of(obj).get(api.LAST_APPLIED_ANNOTATION)
    if not text:
        return None
    try:
        applied = json.loads(text)
    except ValueError:
        return None
    return applied if isinstance(applied, dict) else None


def applied_alpha_pools(obj):
    """The preview pools (namespace/name) that the manifest kubectl last applied to ``obj`` names, sorted.

    A preview pool names itself, an InferenceModel its poolRef, an HTTPRoute its backendRefs into the preview
    group (any weight: applying it again brings the ref back). Anything else, or no such manifest: [].
    """
    applied = last_applied(obj)
    if not applied:
        return []
    applied.setdefault("metadata", {})
    if not isinstance(applied["metadata"], dict):
        return []
    applied["metadata"].setdefault("namespace", namespace_of(obj))
    applied["metadata"].setdefault("name", name_of(obj))
    try:
        if is_type(applied, api.ALPHA_POOL):
            keys = [refs.pool_key(applied)]
        elif is_type(applied, api.INFERENCE_MODEL):
            keys = [model_pool_key(applied)]
        elif is_type(applied, api.HTTP_ROUTE):
            keys = [key for _rule, _ref, key, _weight in refs.route_backends(applied)]
        else:
            keys = []
    except (AttributeError, KeyError, TypeError):
        return []
    return sorted(set("%s/%s" % (key.namespace, key.name) for key in keys
                      if key.group == api.ALPHA_GROUP and key.kind == api.ALPHA_POOL.kind))


def last_applied_fix(kind, pools):
    """What to do about an object whose last applied manifest names the preview ``pools`` (namespace/name)."""
    named = ", ".join(pools)
    if kind in (api.ALPHA_POOL.kind, api.INFERENCE_MODEL.kind):
        return ("delete its source manifest (it names preview pool %s), or the next kubectl apply of it brings the "
                "preview object back (or fails once the preview CRDs are gone)" % named)
    return ("change its source manifest to the v1 InferencePool (group %s) instead of preview pool %s, or the next "
            "kubectl apply of it undoes the migration" % (api.GA_GROUP, named))


TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0", "")


def accepted_managers(accept):
    """The manager names ``migration_accept_managed_objects`` acknowledges, as given: true means every manager,
    false or empty none, a list (or a comma-separated string, as ``-e key=value`` gives) those named."""
    if isinstance(accept, bool):
        return list(api.OBJECT_MANAGERS) if accept else []
    if accept is None:
        return []
    if isinstance(accept, str):
        word = accept.strip().lower()
        if word in TRUE_WORDS:
            return list(api.OBJECT_MANAGERS)
        if word in FALSE_WORDS:
            return []
        accept = accept.split(",")
    return [str(name).strip() for name in accept if str(name).strip()]


def ownership(touched):
    """(managed_objects, last_applied) over ``touched``, (pool name, kind, object) for what each pool's migration writes.

    An object serving several pools (a route) is listed once, with every pool it serves.
    """
    managed, applied = {}, {}
    for pool_name, kind, obj in touched:
        ident = (kind, namespace_of(obj), name_of(obj))
        base = {"kind": kind, "namespace": namespace_of(obj), "name": name_of(obj), "pools": []}
        managers = managers_of(obj)
        if managers:
            managed.setdefault(ident, dict(base, managers=managers))["pools"].append(pool_name)
        names = applied_alpha_pools(obj)
        if names:
            applied.setdefault(ident, dict(base, names=names, fix=last_applied_fix(kind, names)))["pools"].append(pool_name)
    return _in_order(managed), _in_order(applied)


def _in_order(found):
    """The entries of {(kind, namespace, name): entry} by namespace, kind and name."""
    return [found[ident] for ident in sorted(found, key=lambda i: (i[1] or "", i[0], i[2]))]
