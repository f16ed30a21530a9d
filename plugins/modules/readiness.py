#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: readiness
short_description: Tell whether a Gateway, HTTPRoutes, InferencePools and EPP Deployments are ready, optionally waiting
version_added: 1.0.0
description:
  - Reads the objects the verification gates look at and says, for each, whether it is ready and,
    if not, why, quoting the status conditions.
  - A Gateway is ready when its C(Programmed) condition is C(True).
  - An HTTPRoute is ready when every parent in C(status.parents) reports C(Accepted=True) and
    C(ResolvedRefs=True) observed at the route's current C(metadata.generation). Unlike
    C(kubernetes.core.k8s_info) C(wait_condition), this reads the per-parent conditions.
  - An InferencePool (preview group C(inference.networking.x-k8s.io) or v1 group
    C(inference.networking.k8s.io)) is ready when every gateway that wrote its status reports
    C(Accepted=True). Some gateways never write pool status; O(pool_status_mode) says what then.
  - An EPP Deployment is ready when it has available replicas and its C(Available) condition is C(True).
  - Never fails because an object is not ready; the result says so in RV(ready) and RV(problems).
    The C(verify) role asserts on them.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  gateway:
    description:
      - The Gateway to check.
    type: dict
    suboptions:
      name:
        description: Name of the Gateway.
        type: str
        required: true
      namespace:
        description: Namespace of the Gateway.
        type: str
        default: default
  gateways:
    description:
      - More Gateways to check, for example every Gateway the routes of the pools being migrated attach to.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the Gateway.
        type: str
        required: true
      namespace:
        description: Namespace of the Gateway.
        type: str
        default: default
  routes:
    description:
      - The HTTPRoutes to check.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the HTTPRoute.
        type: str
        required: true
      namespace:
        description: Namespace of the HTTPRoute.
        type: str
        default: default
      rules:
        description:
          - The rules the migration last wrote in this route, as the
            P(inference_gateway.migration.split_routes#filter) and
            P(inference_gateway.migration.with_written_weights#filter) filters return them.
          - When given, the route is also not ready if any of these rules now sends another share of its traffic
            to any backend than these weights give (another writer put the route back, for example GitOps
            self-heal). Such a route is listed in RV(reverted), the problem names the writer from
            C(metadata.managedFields), and O(wait_timeout) stops waiting at once.
        type: list
        elements: dict
        suboptions:
          index:
            description: Position of the rule in C(spec.rules).
            type: int
            required: true
          weights:
            description: Backend (C(<group>/<kind>/<namespace>/<name>)) to weight, as written.
            type: dict
            required: true
  pools:
    description:
      - The InferencePools to check.
    type: list
    elements: dict
    default: []
    suboptions:
      group:
        description:
          - API group of the pool, C(inference.networking.k8s.io) (v1) or C(inference.networking.x-k8s.io) (preview).
        type: str
        required: true
      name:
        description: Name of the pool.
        type: str
        required: true
      namespace:
        description: Namespace of the pool.
        type: str
        default: default
  epp_deployments:
    description:
      - The endpoint picker (EPP) Deployments to check.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the Deployment.
        type: str
        required: true
      namespace:
        description: Namespace of the Deployment.
        type: str
        default: default
  pool_status_mode:
    description:
      - V(strict) counts a pool whose status no gateway wrote as not ready.
      - V(tolerant) counts it as ready, warns, and lists it in RV(tolerated).
    type: str
    choices: [strict, tolerant]
    default: tolerant
  wait_timeout:
    description:
      - Seconds to keep reading, every 2 seconds, until every object is ready. V(0) reads once.
      - "Stops at once when a route was reverted (RV(reverted)) or refuses a backendRef (RV(refused)) and every object
        of the other kinds is ready: waiting cures neither. Objects of the other kinds read with such a route still
        get the wait to become ready."
    type: int
    default: 0
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
  - inference_gateway.migration.cluster.read_only
"""

EXAMPLES = r"""
- name: Wait up to 2 minutes until llm-route is accepted with resolved refs at its current generation
  inference_gateway.migration.readiness:
    routes:
      - name: llm-route
        namespace: default
    wait_timeout: 120
  register: routes_state

- name: Read the Gateway, the v1 pool and its EPP
  inference_gateway.migration.readiness:
    gateway:
      name: inference-gateway
    pools:
      - group: inference.networking.k8s.io
        name: vllm-llama3-8b-instruct-ga
    epp_deployments:
      - name: vllm-llama3-8b-instruct-ga-epp
    pool_status_mode: strict
  register: v1_state

- name: Fail unless they are all ready
  ansible.builtin.assert:
    that: v1_state.ready
    fail_msg: "{{ v1_state.problems | join('; ') }}"
"""

RETURN = r"""
ready:
  description: Whether every object checked is ready.
  returned: always
  type: bool
  sample: false
problems:
  description: One sentence per object that is not ready, naming it and quoting its conditions.
  returned: always
  type: list
  elements: str
  sample: ["HTTPRoute default/llm-route parent inference-gateway: ResolvedRefs is False (reason BackendNotFound, observedGeneration 4, generation 4): ..."]
summary:
  description: One line per object checked, in the order Gateway, routes, pools, EPP Deployments, saying what was
    seen (when ready) or what is wrong (its problems).
  returned: always
  type: list
  elements: str
  sample: ["Gateway default/inference-gateway is programmed, address 203.0.113.10"]
by_kind:
  description:
    - The verdict over each kind of object, so that one read can serve one check per kind. Keys C(gateways)
      (O(gateway) first, then O(gateways)), C(routes), C(pools) and C(epp_deployments), always all four; a kind
      with no object asked for is ready with empty lists.
  returned: always
  type: dict
  contains:
    ready:
      description: Whether every object of the kind is ready.
      type: bool
    problems:
      description: The problems of the kind's objects, as in RV(problems).
      type: list
      elements: str
    summary:
      description: One line per object of the kind, in the order given, as in RV(summary).
      type: list
      elements: str
    tolerated:
      description: The kind's part of RV(tolerated) (only pools have any).
      type: list
      elements: str
  sample: {"gateways": {"ready": true, "problems": [], "tolerated": [],
                        "summary": ["Gateway default/inference-gateway is programmed, address 203.0.113.10"]},
           "routes": {"ready": false, "summary": ["HTTPRoute default/llm-route not found"], "tolerated": [],
                      "problems": ["HTTPRoute default/llm-route not found"]},
           "pools": {"ready": true, "problems": [], "summary": [], "tolerated": []},
           "epp_deployments": {"ready": true, "problems": [], "summary": [], "tolerated": []}}
refused:
  description: One sentence per route parent that refuses a backendRef at the route's current generation for a
    reason no wait cures (C(ResolvedRefs) False, reason C(RefNotPermitted), a reference into another namespace that
    no ReferenceGrant allows), saying what to change. O(wait_timeout) stops waiting at once when there is one.
  returned: always
  type: list
  elements: str
  sample: []
gateways:
  description: The state of each Gateway in O(gateways), as RV(gateway).
  returned: always
  type: list
  elements: dict
  sample: []
reverted:
  description: One sentence per route whose traffic another writer changed after the migration wrote the O(routes[].rules),
    naming the rules, the shares now and as written, and the writer.
  returned: always
  type: list
  elements: str
  sample: []
tolerated:
  description: Pools that passed only because O(pool_status_mode) is V(tolerant) and no gateway wrote their status.
  returned: always
  type: list
  elements: str
  sample: []
waited_seconds:
  description: How long the module waited for the objects to become ready.
  returned: always
  type: float
  sample: 4.0
gateway:
  description: The Gateway's state.
  returned: when O(gateway) is set
  type: dict
  contains:
    name:
      description: Name.
      type: str
    namespace:
      description: Namespace.
      type: str
    found:
      description: Whether the Gateway exists.
      type: bool
    programmed:
      description: Whether C(Programmed) is C(True).
      type: bool
    address:
      description: C(status.addresses[0].value), the address the endpoint probe sends to.
      type: str
    listeners:
      description: The names of the Gateway's listeners, in its order.
      type: list
      elements: str
    ready:
      description: Whether it is ready.
      type: bool
    problems:
      description: Why it is not ready.
      type: list
      elements: str
    summary:
      description: What was seen when ready, the problems otherwise.
      type: str
  sample: {"name": "inference-gateway", "namespace": "default", "found": true, "programmed": true,
           "address": "203.0.113.10", "listeners": ["http"], "ready": true, "problems": []}
routes:
  description: Each HTTPRoute's state, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name.
      type: str
    namespace:
      description: Namespace.
      type: str
    found:
      description: Whether the route exists.
      type: bool
    generation:
      description: The route's C(metadata.generation).
      type: int
    reverted:
      description: How another writer changed the rules given in O(routes[].rules), empty when none did.
      type: list
      elements: str
    ready:
      description: Whether every parent accepted the route and resolved its refs at this generation and, with
        O(routes[].rules), it sends the traffic written.
      type: bool
    problems:
      description: Why it is not ready.
      type: list
      elements: str
    summary:
      description: What was seen when ready, the problems otherwise.
      type: str
  sample: [{"name": "llm-route", "namespace": "default", "found": true, "generation": 3, "reverted": [], "ready": true,
            "problems": []}]
pools:
  description: Each InferencePool's state, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    group:
      description: API group.
      type: str
    name:
      description: Name.
      type: str
    namespace:
      description: Namespace.
      type: str
    found:
      description: Whether the pool exists.
      type: bool
    accepted:
      description: V(true) or V(false) as the gateways reported, null when no gateway wrote status.
      type: bool
    tolerated:
      description: Why a pool without status passed in tolerant mode; null otherwise.
      type: str
    ready:
      description: Whether it is ready.
      type: bool
    problems:
      description: Why it is not ready.
      type: list
      elements: str
    summary:
      description: What was seen when ready, the problems otherwise.
      type: str
  sample: []
epp_deployments:
  description: Each EPP Deployment's state, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name.
      type: str
    namespace:
      description: Namespace.
      type: str
    found:
      description: Whether the Deployment exists.
      type: bool
    available_replicas:
      description: C(status.availableReplicas).
      type: int
    replicas:
      description: C(spec.replicas).
      type: int
    ready:
      description: Whether it is available.
      type: bool
    problems:
      description: Why it is not ready.
      type: list
      elements: str
    summary:
      description: What was seen when ready, the problems otherwise.
      type: str
  sample: []
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import readiness
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    gateway=dict(type="dict", options=dict(name=dict(type="str", required=True),
                                           namespace=dict(type="str", default="default"))),
    gateways=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True), namespace=dict(type="str", default="default"))),
    routes=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True), namespace=dict(type="str", default="default"),
        rules=dict(type="list", elements="dict", options=dict(
            index=dict(type="int", required=True), weights=dict(type="dict", required=True))))),
    pools=dict(type="list", elements="dict", default=[], options=dict(
        group=dict(type="str", required=True), name=dict(type="str", required=True),
        namespace=dict(type="str", default="default"))),
    epp_deployments=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True), namespace=dict(type="str", default="default"))),
    pool_status_mode=dict(type="str", choices=list(readiness.POOL_STATUS_MODES), default="tolerant"),
    wait_timeout=dict(type="int", default=0),
)


def check_readiness(module, cluster):
    params = module.params

    def read():
        return readiness.readiness(cluster, params["gateway"], params["routes"], params["pools"],
                                   params["epp_deployments"], params["pool_status_mode"], params["gateways"])

    result = readiness.wait_until_ready(read, params["wait_timeout"])
    for message in result["tolerated"]:
        module.warn(message)
    result["changed"] = False
    return result


def main():
    run_module(OPTIONS, check_readiness)


if __name__ == "__main__":
    main()
