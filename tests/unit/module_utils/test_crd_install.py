"""inference_crds' logic: install only what is missing, never touch what exists or the alpha CRDs."""

import pytest
import yaml

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, crd_install
from ansible_collections.inference_gateway.migration.plugins.module_utils.cluster import ClusterError
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError

from memory_cluster import MemoryCluster

OBJECTIVE = api.INFERENCE_OBJECTIVE.crd_name
GA_POOL = api.GA_POOL.crd_name


def crd(resource, labels=None):
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.crd_name, "labels": labels or {},
                     "annotations": {api.CRD_BUNDLE_VERSION_ANNOTATION: "v1.0.0"}},
        "spec": {"group": resource.group, "names": {"kind": resource.kind, "plural": resource.plural},
                 "scope": "Namespaced", "versions": [{"name": resource.version, "served": True, "storage": True}]},
        "status": {"acceptedNames": {"kind": "", "plural": ""}, "conditions": None, "storedVersions": None},
    }


@pytest.fixture
def bases(tmp_path):
    """A config/crd/bases-like directory, with a non-CRD document and a non-YAML file beside."""
    for resource in (api.GA_POOL, api.INFERENCE_OBJECTIVE, api.ALPHA_POOL):
        (tmp_path / ("%s.yaml" % api.crd_file_name(resource))).write_text(yaml.safe_dump(crd(resource)))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({"kind": "Kustomization", "resources": []}))
    (tmp_path / "README.md").write_text("not yaml: [")
    return tmp_path


def no_fetch(url):
    raise AssertionError("fetched %s although src was given" % url)


def test_installs_what_is_missing_from_a_directory(bases):
    cluster = MemoryCluster()
    result = crd_install.ensure_crds(cluster, [GA_POOL, OBJECTIVE], src=str(bases), fetch=no_fetch)
    assert result["changed"] and result["installed"] == [GA_POOL, OBJECTIVE] and result["kept"] == []
    assert result["source"][OBJECTIVE] == str(bases / "inference.networking.x-k8s.io_inferenceobjectives.yaml")
    stored = cluster.get(api.CRD, OBJECTIVE)
    assert stored["metadata"]["labels"] == {api.MIGRATION_LABEL: api.MIGRATION_LABEL_VALUE}
    assert stored["metadata"]["annotations"] == {api.CRD_BUNDLE_VERSION_ANNOTATION: "v1.0.0"}
    assert cluster.get(api.CRD, api.ALPHA_POOL.crd_name) is None


def test_existing_crd_is_kept_and_never_written(bases):
    cluster = MemoryCluster()
    cluster.add(api.CRD, crd(api.GA_POOL, labels={api.PLATFORM_MANAGED_LABEL: "Reconcile"}))
    result = crd_install.ensure_crds(cluster, [GA_POOL, OBJECTIVE], src=str(bases), fetch=no_fetch)
    assert result["installed"] == [OBJECTIVE] and result["kept"] == [GA_POOL]
    assert [w for w in cluster.writes if w[3] == GA_POOL] == []
    assert cluster.get(api.CRD, GA_POOL)["metadata"]["labels"] == {api.PLATFORM_MANAGED_LABEL: "Reconcile"}


def test_second_run_changes_nothing(bases):
    cluster = MemoryCluster()
    crd_install.ensure_crds(cluster, [GA_POOL, OBJECTIVE], src=str(bases), fetch=no_fetch)
    writes = list(cluster.writes)
    again = crd_install.ensure_crds(cluster, [GA_POOL, OBJECTIVE], src=str(bases), fetch=no_fetch, diff=True)
    assert not again["changed"] and again["installed"] == [] and again["kept"] == [GA_POOL, OBJECTIVE]
    assert again["diff"]["before"] == again["diff"]["after"]
    assert cluster.writes == writes


def test_alpha_crds_are_refused_before_any_write(bases):
    cluster = MemoryCluster()
    with pytest.raises(MigrationError, match="Refusing to install inferencepools.inference.networking.x-k8s.io"):
        crd_install.ensure_crds(cluster, [OBJECTIVE, api.ALPHA_POOL.crd_name], src=str(bases), fetch=no_fetch)
    assert cluster.writes == []


def test_a_name_missing_from_src_fails_before_any_write(bases):
    cluster = MemoryCluster()
    missing = api.INFERENCE_MODEL_REWRITE.crd_name
    with pytest.raises(MigrationError, match="holds no CustomResourceDefinition named %s" % missing):
        crd_install.ensure_crds(cluster, [OBJECTIVE, missing], src=str(bases), fetch=no_fetch)
    assert cluster.writes == []


def test_src_may_be_one_multi_document_file(tmp_path):
    bundle = tmp_path / "manifests.yaml"
    bundle.write_text(yaml.safe_dump_all([crd(api.GA_POOL), {"apiVersion": "v1", "kind": "Namespace"},
                                          crd(api.INFERENCE_OBJECTIVE)]))
    result = crd_install.ensure_crds(MemoryCluster(), [OBJECTIVE], src=str(bundle), fetch=no_fetch)
    assert result["installed"] == [OBJECTIVE] and result["source"][OBJECTIVE] == str(bundle)


@pytest.mark.parametrize("make_src, message", [
    (lambda tmp: tmp / "absent", "neither a file nor a directory"),
    (lambda tmp: tmp, "holds no .yaml"),
])
def test_bad_src_is_named(tmp_path, make_src, message):
    with pytest.raises(MigrationError, match=message):
        crd_install.ensure_crds(MemoryCluster(), [OBJECTIVE], src=str(make_src(tmp_path)), fetch=no_fetch)


def test_invalid_yaml_is_named(tmp_path):
    (tmp_path / "broken.yaml").write_text("a: [unclosed")
    with pytest.raises(MigrationError, match="broken.yaml is not valid YAML"):
        crd_install.ensure_crds(MemoryCluster(), [OBJECTIVE], src=str(tmp_path), fetch=no_fetch)


def test_without_src_reads_the_upstream_release_raw_url():
    fetched = []

    def fetch(url):
        fetched.append(url)
        return yaml.safe_dump(crd(api.INFERENCE_OBJECTIVE))

    result = crd_install.ensure_crds(MemoryCluster(), [OBJECTIVE], release="v1.0.2", fetch=fetch)
    url = ("https://github.com/kubernetes-sigs/gateway-api-inference-extension/raw/v1.0.2/config/crd/bases/"
           "inference.networking.x-k8s.io_inferenceobjectives.yaml")
    assert fetched == [url] and result["source"] == {OBJECTIVE: url}


def test_nothing_is_fetched_when_everything_exists():
    cluster = MemoryCluster()
    cluster.add(api.CRD, crd(api.INFERENCE_OBJECTIVE))
    assert crd_install.ensure_crds(cluster, [OBJECTIVE], fetch=no_fetch)["kept"] == [OBJECTIVE]


def test_unknown_crd_without_src_is_refused():
    with pytest.raises(MigrationError, match="No upstream URL is known for CRD widgets.example.com; give src"):
        crd_install.ensure_crds(MemoryCluster(), ["widgets.example.com"], fetch=no_fetch)


def test_url_that_lacks_the_crd_is_refused():
    with pytest.raises(MigrationError, match="does not hold CRD"):
        crd_install.ensure_crds(MemoryCluster(), [OBJECTIVE], fetch=lambda url: "kind: Namespace\n")


def test_check_mode_validates_by_dry_run_and_keeps_nothing(bases):
    cluster = MemoryCluster(dry_run=True)
    result = crd_install.ensure_crds(cluster, [OBJECTIVE], src=str(bases), fetch=no_fetch, diff=True)
    assert result["changed"] and result["installed"] == [OBJECTIVE]
    assert result["diff"] == {"before": {"crds": []}, "after": {"crds": [OBJECTIVE]}}
    assert cluster.writes == [("create", "CustomResourceDefinition", None, OBJECTIVE)]
    assert cluster.get(api.CRD, OBJECTIVE) is None


def test_crd_created_meanwhile_by_someone_else_counts_as_kept(bases):
    cluster = MemoryCluster()
    cluster.before_write = lambda fake, verb: fake.add(api.CRD, crd(api.INFERENCE_OBJECTIVE))
    result = crd_install.ensure_crds(cluster, [OBJECTIVE], src=str(bases), fetch=no_fetch)
    assert not result["changed"] and result["kept"] == [OBJECTIVE]


def test_other_create_failures_propagate(bases):
    refusing = MemoryCluster()
    refusing.errors["create"] = ClusterError("POST: forbidden", status=403)
    with pytest.raises(ClusterError, match="forbidden"):
        crd_install.ensure_crds(refusing, [OBJECTIVE], src=str(bases), fetch=no_fetch)


def test_waits_until_established_and_names_what_is_not():
    cluster = MemoryCluster()
    cluster.add(api.CRD, crd(api.INFERENCE_OBJECTIVE))
    cluster.live(api.CRD, OBJECTIVE)["status"] = {"conditions": [{"type": "Established", "status": "False"}]}
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(MigrationError, match="%s not Established after 5s" % OBJECTIVE):
        crd_install.wait_established(cluster, [OBJECTIVE], 5, sleep=sleep, clock=lambda: now[0])
    assert now[0] == 5


def test_empty_names_are_refused():
    with pytest.raises(MigrationError, match="names is empty"):
        crd_install.ensure_crds(MemoryCluster(), [], fetch=no_fetch)
