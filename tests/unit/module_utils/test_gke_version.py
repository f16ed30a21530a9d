import pytest

from ansible_collections.inference_gateway.migration.plugins.module_utils import gke_version
from ansible_collections.inference_gateway.migration.plugins.module_utils.gke_version import GkeVersion


@pytest.mark.parametrize(
    "git_version, expected",
    [
        ("v1.34.0-gke.1626000", GkeVersion(1, 34, 0, 1626000)),
        ("1.34.0-gke.1626000", GkeVersion(1, 34, 0, 1626000)),
        ("v1.34.1-gke.100", GkeVersion(1, 34, 1, 100)),
        ("v1.33.5-gke.1626000", GkeVersion(1, 33, 5, 1626000)),
        ("v1.35.0-gke.1", GkeVersion(1, 35, 0, 1)),
        (" v1.34.0-gke.1626000\n", GkeVersion(1, 34, 0, 1626000)),
    ],
)
def test_parse_reads_every_number_of_a_gke_version(git_version, expected):
    assert gke_version.parse(git_version) == expected


@pytest.mark.parametrize(
    "git_version",
    ["v1.34.10", "v1.34.0", "v1.34.0-eks-1234", "v1.34.0-gke.", "v1.34-gke.1626000", "gke", "", "garbage",
     "v1.34.0-gke.1626000-extra", None, 1.34, {"gitVersion": "v1.34.0-gke.1"}],
)
def test_parse_returns_none_for_anything_that_is_not_a_gke_version(git_version):
    assert gke_version.parse(git_version) is None


def test_str_gives_the_version_without_the_leading_v():
    assert str(gke_version.parse("v1.34.0-gke.1626000")) == "1.34.0-gke.1626000"


@pytest.mark.parametrize(
    "git_version, ships",
    [
        ("v1.34.0-gke.1626000", True),  # the threshold itself
        ("v1.34.0-gke.1625999", False),
        ("v1.34.0-gke.99999999", True),  # build numbers compare as integers, not strings
        ("v1.34.1-gke.100", True),  # a later patch release, whatever its build number
        ("v1.33.5-gke.1626000", False),  # same build number on an older minor
        ("v1.35.0-gke.1", True),
        ("v2.0.0-gke.1", True),
        ("v1.34.10", False),  # not GKE: nobody ships the CRD for the user
        ("garbage", False),
        (None, False),
    ],
)
def test_ships_ga_pool_crd_compares_all_four_numbers(git_version, ships):
    assert gke_version.ships_ga_pool_crd(git_version) is ships


def test_versions_order_numerically():
    ordered = ["v1.33.5-gke.1626000", "v1.34.0-gke.200", "v1.34.0-gke.1626000", "v1.34.1-gke.100", "v1.34.10-gke.1",
               "v1.35.0-gke.1"]
    parsed = [gke_version.parse(v) for v in ordered]
    assert sorted(reversed(parsed)) == parsed
