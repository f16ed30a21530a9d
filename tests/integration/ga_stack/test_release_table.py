"""The release table (plugins/module_utils/releases.py) against the module source of every release in it.

Each row's facts are read again from the tag's own files, as `go mod download` gives them: the
inferencepool chart's values.yaml and RBAC templates (with the epplib library chart from v1.4),
config/crd (its bases and the kustomization that makes manifests.yaml) and cmd/epp. No sandbox: the
Go module cache only.
"""

import re
import sys

import pytest
import yaml
from igw_sandbox import upstream
from runner import REPO

sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, releases  # noqa: E402

CHART = "config/charts/inferencepool"
TEMPLATE_DIRS = (CHART + "/templates", "config/charts/epplib/templates")
CRD_DIR = "config/crd"
ALPHA_GROUP_RULE = re.compile(r'- apiGroups: \["%s"\]\s*\n\s*resources: \[([^\]]*)\]' % re.escape(api.ALPHA_GROUP))


def source(release):
    return upstream.module_dir(upstream.INFERENCE_EXTENSION, release)


def chart_values(release):
    return yaml.safe_load((source(release) / CHART / "values.yaml").read_text())


def alpha_group_grants(release):
    """The resources of the alpha group the chart's RBAC templates grant (a templated group is the pool's)."""
    granted = set()
    for directory in TEMPLATE_DIRS:
        for template in sorted((source(release) / directory).glob("*rbac*.yaml")):
            for match in ALPHA_GROUP_RULE.finditer(template.read_text()):
                granted.update(name.strip().strip('"') for name in match.group(1).split(","))
    return granted


def rewrite_targets_field(crd_path):
    crd = yaml.safe_load(crd_path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    rule = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["rules"]["items"]["properties"]
    return next(field for field in api.MODEL_REWRITE_TARGET_FIELDS if field in rule)


@pytest.mark.parametrize("release", list(releases.RELEASES))
def test_each_row_is_what_the_releases_module_source_says(release):
    row = releases.facts(release)
    module = source(release)
    values = chart_values(release)
    extension = values["inferenceExtension"]

    image_keys = "/".join(key for key in ("hub", "name", "registry", "repository") if key in extension["image"])
    assert image_keys == row.image_keys
    assert isinstance(extension["flags"], list if row.flags_format == releases.FLAGS_LIST else dict)
    assert ("targetPortNumber" in values["inferencePool"]) == (row.health_check_port_value == "targetPortNumber")
    assert extension.get("failureMode") == row.chart_default_failure_mode

    assert alpha_group_grants(release) == set(row.epp_alpha_resources)
    # The EPP discovers the objective and rewrite CRDs at start where it has a ControllerConfig: the call that does
    # it is missing at v1.3.0.
    controller_config = module / "pkg/epp/server/controller_config.go"
    discovers = "PopulateControllerConfig(" in (module / "cmd/epp/runner/runner.go").read_text()
    assert row.epp_reads_objectives == (not controller_config.exists() or discovers)

    bases = dict((path.name, path) for path in (module / CRD_DIR / "bases").glob("*.yaml"))
    for name in row.stack_crds:
        group = name.split(".", 1)[1]
        assert "%s_%s.yaml" % (group, name.split(".", 1)[0]) in bases, name
    rewrite_file = "%s.yaml" % api.crd_file_name(api.INFERENCE_MODEL_REWRITE)
    assert row.model_rewrite_field == (rewrite_targets_field(bases[rewrite_file]) if rewrite_file in bases else None)
    # The stack installs the rewrite CRD exactly where the EPP's Role reads rewrites.
    assert (api.INFERENCE_MODEL_REWRITE.crd_name in row.stack_crds) == \
        (api.INFERENCE_MODEL_REWRITE.plural in row.epp_alpha_resources)
    kustomization = yaml.safe_load((module / CRD_DIR / "kustomization.yaml").read_text())
    bundled = [resource.rsplit("/", 1)[-1] for resource in kustomization["resources"]]
    assert ("%s.yaml" % api.crd_file_name(api.ALPHA_POOL) in bundled) == row.bundle_has_alpha_pool_crd
