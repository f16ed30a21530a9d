#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: inference_crds
short_description: Install the Inference Gateway CRDs a cluster lacks, never touching those it has
version_added: 1.0.0
description:
  - Creates each CustomResourceDefinition named in O(names) that does not exist yet, reading it from the upstream
    GIE release (O(release)) or from a local file or directory (O(src), for clusters without internet access),
    and waits until every named CRD is Established.
  - A CRD that exists is never changed, whoever installed it; GKE from 1.34.0-gke.1626000 on manages the v1
    InferencePool CRD itself. Such CRDs are reported in RV(kept).
  - Refuses the preview (alpha) InferencePool and InferenceModel CRDs; the running preview stack depends on them.
  - Every source is read and checked before the first write.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  names:
    description:
      - Names of the CRDs to ensure, for example C(inferenceobjectives.inference.networking.x-k8s.io) and
        C(inferencepools.inference.networking.k8s.io). P(inference_gateway.migration.ga_crd_plan#filter) gives
        them from an P(inference_gateway.migration.inferencepool_detect#module) result.
    type: list
    elements: str
    required: true
  release:
    description:
      - GIE release whose CRDs are installed when O(src) is not given; each is read from
        C(<download_url>/raw/<release>/config/crd/bases/<group>_<plural>.yaml).
    type: str
    default: v1.0.0
  download_url:
    description:
      - Where the GIE releases are published, or a mirror of them that keeps the same paths (for clusters whose
        controller cannot reach GitHub). Certificates are verified against the system's trust store; point
        E(SSL_CERT_FILE) at a bundle that holds a private mirror's CA.
    type: str
    default: https://github.com/kubernetes-sigs/gateway-api-inference-extension
    version_added: 1.1.0
  src:
    description:
      - A YAML file (one or more documents, such as a release's C(manifests.yaml)) or a directory of YAML files
        (such as C(config/crd/bases) of a GIE release) holding the CRDs. Other documents are ignored.
    type: path
  wait_timeout:
    description:
      - Seconds to wait for the CRDs to be Established.
    type: int
    default: 120
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
attributes:
  check_mode:
    support: full
    details: CRDs are created as server-side dry runs, so the API server validates them but keeps nothing.
  diff_mode:
    support: partial
    details: The diff lists the named CRDs present before and after, not their content.
requirements:
  - PyYAML
notes:
  - CRDs the module creates carry the label C(inference-gateway.migration/managed=true).
"""

EXAMPLES = r"""
- name: Install the InferenceObjective CRD (GKE 1.34.0-gke.1626000 or later ships the v1 InferencePool CRD)
  inference_gateway.migration.inference_crds:
    names:
      - inferenceobjectives.inference.networking.x-k8s.io

- name: Install what a detect result plans, from a local copy of the release's CRDs
  inference_gateway.migration.inference_crds:
    names: "{{ (detect | inference_gateway.migration.ga_crd_plan).install }}"
    src: /srv/gie/v1.0.0/config/crd/bases
"""

RETURN = r"""
installed:
  description: CRDs the module created.
  returned: always
  type: list
  elements: str
  sample: ["inferenceobjectives.inference.networking.x-k8s.io"]
kept:
  description: CRDs that existed and were left as they are (for example the GKE-managed v1 InferencePool CRD).
  returned: always
  type: list
  elements: str
  sample: ["inferencepools.inference.networking.k8s.io"]
source:
  description: Where each installed CRD was read from (a URL or a file path).
  returned: always
  type: dict
  sample: {"inferenceobjectives.inference.networking.x-k8s.io": "/srv/gie/v1.0.0/config/crd/bases/inference.networking.x-k8s.io_inferenceobjectives.yaml"}
diff:
  description: The named CRDs present before and after.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: C(crds), the named CRDs that existed.
      type: dict
    after:
      description: C(crds), the named CRDs that exist afterwards.
      type: dict
"""

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url
from ansible_collections.inference_gateway.migration.plugins.module_utils import api
from ansible_collections.inference_gateway.migration.plugins.module_utils.crd_install import ensure_crds
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    names=dict(type="list", elements="str", required=True),
    release=dict(type="str", default=api.GA_RELEASE),
    src=dict(type="path"),
    download_url=dict(type="str", default=api.GIE_DOWNLOAD_URL),
    wait_timeout=dict(type="int", default=120),
)
DOWNLOAD_TIMEOUT = 60


def download(url):
    """The text at ``url``; a refusal that names the URL and the options that avoid the download."""
    try:
        return open_url(url, timeout=DOWNLOAD_TIMEOUT, http_agent="inference_gateway.migration").read().decode("utf-8")
    except HTTPError as e:
        reason = "HTTP %s %s" % (e.code, e.reason)
    except (URLError, OSError) as e:
        reason = str(getattr(e, "reason", e))
    raise MigrationError("Could not download %s (%s). Check that the release exists there; or point "
                         "migration_gie_download_url (this module's download_url) at a mirror of the GIE releases; or "
                         "give ga_stack_crd_source (this module's src) a local copy of the CRDs" % (url, reason),
                         url=url)


def install_crds(module, cluster):
    params = module.params
    return ensure_crds(cluster, params["names"], release=params["release"], src=params["src"],
                       wait_timeout=params["wait_timeout"], fetch=download, diff=module._diff,
                       download_url=params["download_url"])


def main():
    run_module(OPTIONS, install_crds)


if __name__ == "__main__":
    main()
