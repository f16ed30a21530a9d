# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""GIE releases of the v1 stack: what each one's chart, endpoint picker and CRD bundle need.

Every fact that depends on the release the v1 stack is built at lives in RELEASES, one row
per release, each row the one before it with what that release changed. The facts were read
from the module source of each tag (``go mod download -json
sigs.k8s.io/gateway-api-inference-extension@<tag>``): config/charts/inferencepool (and from
v1.4 config/charts/epplib), config/crd and cmd/epp. A release that cannot be parsed or is not
in the table is refused rather than guessed at.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import OrderedDict, namedtuple

from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

_RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")

# The inferencepool chart's keys under inferenceExtension.image for where the EPP image comes from: until v1.4
# `hub` (registry and path) and `name`; from v1.5 `registry` and `repository` (the path below the registry).
IMAGE_HUB_NAME = "hub/name"
IMAGE_REGISTRY_REPOSITORY = "registry/repository"
# inferenceExtension.flags: until v1.1 a list of {name, value}; from v1.2 a map of flag name to value.
FLAGS_LIST = "list"
FLAGS_MAP = "map"

Release = namedtuple("Release", [
    # Chart values --------------------------------------------------------------------------------------------
    "image_keys",          # IMAGE_HUB_NAME or IMAGE_REGISTRY_REPOSITORY
    "flags_format",        # FLAGS_LIST or FLAGS_MAP
    # The value the chart's GKE HealthCheckPolicy takes the model-server port from: inferencePool.targetPortNumber
    # (v1.0-v1.4, which ignore targetPorts there), or None (v1.5 reads targetPorts[0] and has no targetPortNumber).
    "health_check_port_value",
    # What failureMode the chart writes on a v1 pool when the values give none: None (v1.0-v1.3 write none, so the
    # API default FailClose applies) or FailOpen (from v1.4). The migration always writes the preview pool's.
    "chart_default_failure_mode",
    # The endpoint picker ------------------------------------------------------------------------------------
    # Resources of the alpha group (InferenceObjective's) that the chart's Role lets the EPP read.
    "epp_alpha_resources",
    # Whether the EPP reconciles InferenceObjectives (and, where it reads them, InferenceModelRewrites). v1.3.0
    # never starts those reconcilers (PopulateControllerConfig is not called; llm-d/llm-d-router#610).
    "epp_reads_objectives",
    # CRDs -------------------------------------------------------------------------------------------------
    # The CRDs the v1 stack of the release needs: the v1 pool's, InferenceObjective's, and from v1.3 (where the
    # EPP and its Role read them) InferenceModelRewrite's.
    "stack_crds",
    # Whether the release's CRD bundle (manifests.yaml) still holds the preview InferencePool CRD (gone at v1.5).
    "bundle_has_alpha_pool_crd",
    # How InferenceModelRewrite rules name their targets: None (no CRD before v1.2), `split` (v1.2), `targets`.
    "model_rewrite_field",
])

_V1_0_0 = Release(
    image_keys=IMAGE_HUB_NAME,
    flags_format=FLAGS_LIST,
    health_check_port_value="targetPortNumber",
    chart_default_failure_mode=None,
    # v1.0.0's Role grants pools of both groups; the rule is the same for objectives from v1.0.1 on.
    epp_alpha_resources=(api.INFERENCE_OBJECTIVE.plural, api.ALPHA_POOL.plural),
    epp_reads_objectives=True,
    stack_crds=(api.GA_POOL.crd_name, api.INFERENCE_OBJECTIVE.crd_name),
    bundle_has_alpha_pool_crd=True,
    model_rewrite_field=None,
)

RELEASES = OrderedDict()
RELEASES["v1.0.0"] = _V1_0_0
# v1.0.1: gke.monitoringSecret became inferenceExtension.monitoring (not set by the migration); the Role grants
# inferencepools only in the group of inferencePool.apiVersion.
RELEASES["v1.0.1"] = RELEASES["v1.0.0"]._replace(epp_alpha_resources=(api.INFERENCE_OBJECTIVE.plural,))
RELEASES["v1.0.2"] = RELEASES["v1.0.1"]
# v1.1.0: InferencePoolImport CRD (multi-cluster, not part of the stack); targetPorts up to 8.
RELEASES["v1.1.0"] = RELEASES["v1.0.2"]
# v1.2.0: inferenceExtension.flags is a map; InferenceModelRewrite CRD with `split` (the EPP does not read it yet).
RELEASES["v1.2.0"] = RELEASES["v1.1.0"]._replace(flags_format=FLAGS_MAP, model_rewrite_field="split")
RELEASES["v1.2.1"] = RELEASES["v1.2.0"]
# v1.3.0: `split` renamed `targets`; the EPP reads InferenceModelRewrites and the Role grants them -- but the
# v1.3.0 EPP starts neither reconciler (fixed in v1.3.1).
_READS_REWRITES = dict(
    epp_alpha_resources=(api.INFERENCE_OBJECTIVE.plural, api.INFERENCE_MODEL_REWRITE.plural),
    stack_crds=(api.GA_POOL.crd_name, api.INFERENCE_OBJECTIVE.crd_name, api.INFERENCE_MODEL_REWRITE.crd_name),
    model_rewrite_field="targets",
)
RELEASES["v1.3.0"] = RELEASES["v1.2.1"]._replace(epp_reads_objectives=False, **_READS_REWRITES)
RELEASES["v1.3.1"] = RELEASES["v1.3.0"]._replace(epp_reads_objectives=True)
# v1.4.0: the chart writes failureMode on the v1 pool, FailOpen unless the values say otherwise.
RELEASES["v1.4.0"] = RELEASES["v1.3.1"]._replace(chart_default_failure_mode="FailOpen")
# v1.5.0: image.registry/repository; no targetPortNumber; the bundle lost the preview InferencePool CRD.
RELEASES["v1.5.0"] = RELEASES["v1.4.0"]._replace(image_keys=IMAGE_REGISTRY_REPOSITORY, health_check_port_value=None,
                                                 bundle_has_alpha_pool_crd=False)

# The releases whose v1 stack this collection builds, oldest first.
V1_RELEASES = tuple(RELEASES)


def parse(release):
    """(major, minor, patch) of a GIE release tag such as v1.0.0; MigrationError for anything else."""
    match = _RELEASE_TAG.match(release) if isinstance(release, str) else None
    if not match:
        raise MigrationError("release %r is not a GIE release tag such as %s" % (release, api.GA_RELEASE))
    return tuple(int(n) for n in match.groups())


def at_least(release, minimum):
    """Whether release is minimum or later; both are release tags."""
    return parse(release) >= parse(minimum)


def facts(release):
    """The RELEASES row of ``release``; MigrationError naming the known releases for any other."""
    parse(release)
    try:
        return RELEASES[release]
    except KeyError:
        raise MigrationError("GIE release %s is not one whose v1 stack this collection builds (%s)"
                             % (release, ", ".join(V1_RELEASES)))


def first_release(predicate):
    """The oldest release whose row satisfies ``predicate``, for messages such as "from v1.3.0 on"."""
    return next((release for release, row in RELEASES.items() if predicate(row)), None)


def epp_reads_model_rewrites(release):
    return api.INFERENCE_MODEL_REWRITE.plural in facts(release).epp_alpha_resources


# The first release whose EPP reads InferenceModelRewrites, for messages.
MODEL_REWRITES_FROM = first_release(lambda row: api.INFERENCE_MODEL_REWRITE.plural in row.epp_alpha_resources)


def image_values(release, image):
    """The chart's inferenceExtension.image values for ``image`` (registry/path/epp, no tag; the tag stays the
    chart's own release), in the keys of ``release``; {} for no image."""
    if not image:
        return {}
    if ":" in image.rsplit("/", 1)[-1] or "/" not in image:
        raise MigrationError("EPP image %r must be a registry path such as registry.example.com/"
                             "gateway-api-inference-extension/epp, without a tag (the tag is the release)" % (image,))
    if facts(release).image_keys == IMAGE_HUB_NAME:
        hub, name = image.rsplit("/", 1)
        return {"hub": hub, "name": name}
    registry, repository = image.split("/", 1)
    return {"registry": registry, "repository": repository}


def flag_values(release, flags):
    """The chart's inferenceExtension.flags for ``flags`` (flag name -> value, without dashes), in the format of
    ``release``; None for no flags (the chart's own default stays)."""
    if not flags:
        return None
    if facts(release).flags_format == FLAGS_LIST:
        return [{"name": name, "value": flags[name]} for name in sorted(flags)]
    return dict(flags)
