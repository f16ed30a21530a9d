"""The release table (releases.RELEASES) and its effect on everything the v1 stack is built from.

Each test walks every release of the table and derives what it expects from that release's row, so a
changed row changes the expectation; the table itself is checked against the upstream module source in
tests/integration/ga_stack/test_release_table.py.
"""

import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, convert, epp_manifests, releases
from ansible_collections.inference_gateway.migration.plugins.module_utils import plan as planning
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

from test_convert import alpha_pool, by_kind, detect_entry

RELEASES = list(releases.RELEASES)
MIRROR_IMAGE = "mirror.example.com:5000/gie/epp"


def test_the_table_runs_from_the_ga_release_to_the_last_release_with_an_epp_in_release_order():
    assert RELEASES[0] == api.GA_RELEASE
    assert RELEASES == sorted(RELEASES, key=releases.parse)
    assert releases.V1_RELEASES == tuple(RELEASES)
    last = releases.parse(RELEASES[-1])
    assert all(releases.parse(r) > last for r in api.GIE_RELEASES_WITHOUT_EPP)


@pytest.mark.parametrize("release", ["v1.6.0", "v0.5.1", "v9.9.9"])
def test_a_release_outside_the_table_is_refused_naming_the_known_ones(release):
    with pytest.raises(MigrationError, match="not one whose v1 stack this collection builds.*v1.0.0.*v1.5.0"):
        releases.facts(release)
    with pytest.raises(MigrationError):
        convert.ga_chart_values(alpha_pool(), release=release)


def test_every_row_names_known_values():
    for release, row in releases.RELEASES.items():
        assert row.image_keys in (releases.IMAGE_HUB_NAME, releases.IMAGE_REGISTRY_REPOSITORY), release
        assert row.flags_format in (releases.FLAGS_LIST, releases.FLAGS_MAP), release
        assert row.chart_default_failure_mode in (None, "FailOpen", "FailClose"), release
        assert row.model_rewrite_field in (None,) + api.MODEL_REWRITE_TARGET_FIELDS, release
        assert set(row.stack_crds) >= set(api.PROTECTED_CRDS), release
        assert not set(row.stack_crds) & set(api.ALPHA_CRDS), release


# --- chart values -----------------------------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_chart_values_carry_the_health_check_port_only_where_the_chart_reads_it(release):
    row = releases.facts(release)
    values = convert.ga_chart_values(alpha_pool(targetPortNumber=8080), release=release)
    assert values["inferencePool"]["targetPorts"] == [{"number": 8080}]
    if row.health_check_port_value:
        assert values["inferencePool"][row.health_check_port_value] == 8080
    assert set(values["inferencePool"]) == {"modelServers", "targetPorts"} | (
        {row.health_check_port_value} if row.health_check_port_value else set())


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("failure_mode", [None, "FailClose", "FailOpen"])
def test_chart_values_always_write_the_preview_pools_failure_mode(release, failure_mode):
    extension_ref = {"name": "e"}
    if failure_mode:
        extension_ref["failureMode"] = failure_mode
    values = convert.ga_chart_values(alpha_pool(extensionRef=extension_ref), release=release)
    # Never left to the chart: from v1.4 its default (FailOpen) differs from the API's.
    assert values["inferenceExtension"]["failureMode"] == (failure_mode or api.DEFAULT_FAILURE_MODE)


def test_the_chart_default_failure_mode_differs_from_the_api_default_somewhere():
    """Why the values always carry it: some release's chart would otherwise write FailOpen."""
    defaults = set(row.chart_default_failure_mode for row in releases.RELEASES.values())
    assert defaults - {None, api.DEFAULT_FAILURE_MODE}


@pytest.mark.parametrize("release", RELEASES)
def test_chart_values_give_the_epp_image_in_the_releases_keys(release):
    image = convert.ga_chart_values(alpha_pool(), release=release, epp_image=MIRROR_IMAGE)["inferenceExtension"]["image"]
    keys = releases.facts(release).image_keys.split("/")
    assert sorted(image) == sorted(keys)
    assert "/".join(image[key] for key in keys) == MIRROR_IMAGE
    assert "image" not in convert.ga_chart_values(alpha_pool(), release=release)["inferenceExtension"]


@pytest.mark.parametrize("image", ["epp", "registry.k8s.io/gateway-api-inference-extension/epp:v1.0.0"])
def test_an_image_with_a_tag_or_without_a_registry_is_refused(image):
    with pytest.raises(MigrationError, match="without a tag"):
        releases.image_values("v1.5.0", image)


@pytest.mark.parametrize("release", RELEASES)
def test_chart_values_give_epp_flags_in_the_releases_format(release):
    flags = convert.ga_chart_values(alpha_pool(), release=release, epp_flags={"v": 3, "enable-pprof": True})
    written = flags["inferenceExtension"]["flags"]
    if releases.facts(release).flags_format == releases.FLAGS_LIST:
        assert written == [{"name": "enable-pprof", "value": True}, {"name": "v", "value": 3}]
    else:
        assert written == {"v": 3, "enable-pprof": True}
    assert "flags" not in convert.ga_chart_values(alpha_pool(), release=release)["inferenceExtension"]


def test_both_image_key_styles_and_both_flag_formats_occur():
    rows = releases.RELEASES.values()
    assert set(r.image_keys for r in rows) == {releases.IMAGE_HUB_NAME, releases.IMAGE_REGISTRY_REPOSITORY}
    assert set(r.flags_format for r in rows) == {releases.FLAGS_LIST, releases.FLAGS_MAP}


# --- endpoint picker (manifests mode) ----------------------------------------------------------------


def granted(objects):
    rules = by_kind(objects)["Role"]["rules"]
    return set((group, resource) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"])


@pytest.mark.parametrize("release", RELEASES)
def test_manifests_role_grants_what_the_releases_epp_reads(release):
    grants = granted(epp_manifests.ga_manifests(detect_entry(), release=release))
    for resource in releases.facts(release).epp_alpha_resources:
        assert (api.ALPHA_GROUP, resource) in grants
    assert ((api.ALPHA_GROUP, api.INFERENCE_MODEL_REWRITE.plural) in grants) == \
        releases.epp_reads_model_rewrites(release)
    assert (api.GA_GROUP, api.GA_POOL.plural) in grants


@pytest.mark.parametrize("release", RELEASES)
def test_manifests_run_the_releases_epp_image_with_extra_flags(release):
    objects = epp_manifests.ga_manifests(detect_entry(), release=release, epp_image=MIRROR_IMAGE, epp_flags={"v": 4})
    container = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "%s:%s" % (MIRROR_IMAGE, release)
    assert container["args"][-2:] == ["--v", "4"]


# --- CRDs and InferenceModelRewrites --------------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("keep_managed", [[], [api.GA_POOL.crd_name]])
def test_crd_plan_installs_the_crds_of_the_releases_stack_the_platform_does_not_manage(release, keep_managed):
    plan = planning.ga_crd_plan({"crd_plan": {"install": [], "keep_managed": keep_managed}}, release)
    assert plan["install"] == sorted(set(releases.facts(release).stack_crds) - set(keep_managed))


@pytest.mark.parametrize("release", RELEASES)
def test_rewrite_field_without_a_crd_is_that_of_the_crd_the_release_installs(release):
    row = releases.facts(release)
    detect = {"crds": {api.INFERENCE_MODEL_REWRITE.crd_name: {"present": False}}}
    expected = row.model_rewrite_field if api.INFERENCE_MODEL_REWRITE.crd_name in row.stack_crds else None
    assert planning.model_rewrite_field(detect, release) == expected
    if expected:
        plan = planning.ga_crd_plan({"crd_plan": {"install": [], "keep_managed": []}}, release)
        assert api.INFERENCE_MODEL_REWRITE.crd_name in plan["install"]


@pytest.mark.parametrize("release", RELEASES)
def test_an_installed_rewrite_crd_keeps_its_own_spelling(release):
    detect = {"crds": {api.INFERENCE_MODEL_REWRITE.crd_name: {"present": True}}, "model_rewrite_targets_field": "split"}
    assert planning.model_rewrite_field(detect, release) == "split"


@pytest.mark.parametrize("release", RELEASES)
def test_plan_warns_where_the_releases_epp_ignores_objectives(release):
    plan = planning.ga_plan(detect_entry(), release=release)
    warned = [w for w in plan["warnings"] if "starts no InferenceObjective" in w]
    assert bool(warned) == (not releases.facts(release).epp_reads_objectives)
    if warned:
        assert release in warned[0] and "food-review" in warned[0]


@pytest.mark.parametrize("release", RELEASES)
def test_plan_builds_chart_values_and_manifests_for_the_release(release):
    pool = detect_entry()
    helm = planning.ga_plan(pool, release=release, epp_image=MIRROR_IMAGE)
    assert helm["chart_values"] == convert.ga_chart_values(pool, release=release, epp_image=MIRROR_IMAGE)
    manifests = planning.ga_plan(pool, mode="manifests", release=release)
    assert manifests["manifests"] == epp_manifests.ga_manifests(pool, release, name=manifests["release"])


def test_plan_refuses_a_malformed_image_in_either_mode():
    for mode in ("helm", "manifests"):
        with pytest.raises(MigrationError, match="without a tag"):
            planning.ga_plan(detect_entry(), mode=mode, release="v1.3.0", epp_image="epp:v1")


def test_model_rewrites_from_is_the_first_release_whose_epp_reads_them():
    first = releases.MODEL_REWRITES_FROM
    assert releases.epp_reads_model_rewrites(first)
    assert not any(releases.epp_reads_model_rewrites(r) for r in RELEASES[:RELEASES.index(first)])
