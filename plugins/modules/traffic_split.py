#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: traffic_split
short_description: Move traffic between InferencePools by editing HTTPRoute backendRef weights in place
version_added: 1.0.0
description:
  - Sets the weights of the listed backendRefs in the rules of existing HTTPRoutes, for example to shift
    traffic from the preview (C(inference.networking.x-k8s.io)) InferencePool to the GA
    (C(inference.networking.k8s.io)) InferencePool of the same name step by step.
  - Backends are matched by group, kind, namespace and name with the Gateway API defaults applied
    (an omitted group is the core group, an omitted kind is Service, an omitted weight is 1), so the two
    pools of the same name in the two API groups are never confused, and a route that only spells a
    default differently is not changed.
  - Only the weights of the listed backendRefs change (plus the refs that O(add_missing) adds or
    O(remove_zero) drops). Other rules, matches, filters, timeouts, other backendRefs (with their key
    order and fields this module does not know), labels and annotations stay exactly as they were.
  - Every write is a read-modify-write guarded by C(metadata.resourceVersion). When another writer changed
    the route in between, the route is read again and only this module's change is applied again.
    Nothing is written when nothing changes.
  - All selected routes are validated before the first write; one failure lists every problem, each
    naming the route, the rule and the backend, and the fix.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  namespace:
    description:
      - Namespace of the routes named in O(routes), and of the routes O(route_selector) selects (all
        namespaces when unset).
      - Also the namespace of each listed backend that sets no namespace of its own. When this is unset,
        such a backend is looked for in the namespace of each route.
    type: str
  routes:
    description:
      - Names of the HTTPRoutes to edit, in O(namespace). Each must exist.
      - Without O(routes) and O(route_selector), every HTTPRoute in any namespace that references one of the
        listed O(backends) is edited.
    type: list
    elements: str
  route_selector:
    description:
      - Label selector of the HTTPRoutes to edit, in O(namespace) or in all namespaces when it is unset.
      - Every selected route must reference a listed backend in a rule in scope.
    type: str
  backends:
    description:
      - The backends to weight. Every listed backend must be referenced by every rule in scope, unless
        O(add_missing) is set. A backend listed at weight 0 may be absent (it already gets nothing); with
        O(add_missing) and without O(remove_zero) it is added at 0.
      - At least one listed backend must keep a weight above 0.
      - Exactly one of O(backends) and O(splits) is required.
    type: list
    elements: dict
    suboptions: &backend
      group:
        description:
          - API group of the backend; the empty string is the core group (Services).
        type: str
        default: ""
      kind:
        description:
          - Kind of the backend.
        type: str
        default: InferencePool
      name:
        description:
          - Name of the backend.
        type: str
        required: true
      namespace:
        description:
          - Namespace of the backend. Defaults to O(namespace), or to each route's namespace when that is unset.
        type: str
      weight:
        description:
          - The weight the backendRef gets, an integer from 0 to 1,000,000.
        type: int
        required: true
  splits:
    description:
      - Several independent splits in one task, for example one per pool pair of a migration. Each selects
        its own routes (as O(backends) does) and is applied in turn; O(namespace), O(routes), O(route_selector),
        O(rules), O(add_missing), O(remove_zero), O(validate_backends) and O(wait) apply to each.
      - Every split is validated before the first write. A route that several splits select (pools that share a
        route) is written by each in turn, each on the copy the previous write stored.
      - Exactly one of O(backends) and O(splits) is required.
    type: list
    elements: dict
    version_added: 1.1.0
    suboptions:
      backends:
        description:
          - The backends of this split, as in O(backends).
        type: list
        elements: dict
        required: true
        suboptions: *backend
  rules:
    description:
      - The rules to edit in each route, each given by its name (a string) or by its index (an integer from 0).
        Every listed rule must exist in every selected route.
      - By default every rule that references at least one listed backend.
    type: list
    elements: raw
  add_missing:
    description:
      - In every rule in scope that references a listed backend, add the listed backends it lacks right after
        the first listed backendRef, copying that backendRef's filters. A new backendRef carries group, kind,
        name and weight, and namespace only when it differs from the route's.
      - Service backends are never added (a Service backendRef needs a port); add them by hand.
    type: bool
    default: false
  remove_zero:
    description:
      - Drop the listed backendRefs whose weight ends at 0, for the last step of a migration.
    type: bool
    default: false
  validate_backends:
    description:
      - Before any write, check that every listed InferencePool (in its API group) and Service that a route
        still references after the change exists.
      - Backends of other kinds are never checked. A backend that O(remove_zero) drops need not exist.
    type: bool
    default: true
  wait:
    description:
      - After writing, wait until every parent in C(status.parents) of each edited route reports C(Accepted=True)
        and C(ResolvedRefs=True) with an C(observedGeneration) at least the generation written.
      - Routes that need no change are verified the same way at their current generation, so a second run
        also proves that the routes are ready.
      - In check mode, routes that would change are not waited for (nothing was written).
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait for all routes together. On timeout the task fails with the last conditions
        seen; the weights stay written.
    type: int
    default: 120
  wait_sleep:
    description:
      - Seconds between two reads of a route's status while waiting.
    type: float
    default: 1
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
attributes:
  check_mode:
    support: full
    details: Changed routes are sent as server-side dry runs, so the API server validates them and nothing is
      persisted; the result reports what would change.
  diff_mode:
    support: full
    details: One diff per changed route, showing its C(spec.rules) before and after.
notes:
  - Backend names in the results have the form C(<group>/<kind>/<namespace>/<name>); the core group is the
    empty string, so a Service reads C(/Service/<namespace>/<name>).
  - The module does not check that the gateway supports weighted InferencePool backends across API groups;
    verify traffic between steps (for example with M(ansible.builtin.uri)).
seealso:
  - name: Gateway API HTTPRoute backendRefs
    description: How weights split traffic between the backendRefs of a rule.
    link: https://gateway-api.sigs.k8s.io/reference/spec/#httpbackendref
"""

EXAMPLES = r"""
- name: Send half the traffic of llm-route to the GA InferencePool
  inference_gateway.migration.traffic_split:
    namespace: default
    routes: [llm-route]
    add_missing: true
    backends:
      - group: inference.networking.x-k8s.io
        name: vllm-llama3-8b-instruct-preview
        weight: 50
      - group: inference.networking.k8s.io
        name: vllm-llama3-8b-instruct-ga
        weight: 50

- name: Finish, in every route that references either pool, and drop the preview backendRefs
  inference_gateway.migration.traffic_split:
    namespace: default
    remove_zero: true
    backends:
      - group: inference.networking.x-k8s.io
        name: vllm-llama3-8b-instruct-preview
        weight: 0
      - group: inference.networking.k8s.io
        name: vllm-llama3-8b-instruct-ga
        weight: 100
    wait_timeout: 300

- name: Move two pools to their v1 pools in one task, wherever routes reach them (also two rules of one route)
  inference_gateway.migration.traffic_split:
    add_missing: true
    wait: false
    splits:
      - backends:
          - {group: inference.networking.x-k8s.io, namespace: team-chat, name: llama-chat, weight: 50}
          - {group: inference.networking.k8s.io, namespace: team-chat, name: llama-chat-ga, weight: 50}
      - backends:
          - {group: inference.networking.x-k8s.io, namespace: team-chat, name: qwen-chat, weight: 50}
          - {group: inference.networking.k8s.io, namespace: team-chat, name: qwen-chat-ga, weight: 50}

- name: Only the rule named canary of the routes labelled app=llm
  inference_gateway.migration.traffic_split:
    route_selector: app=llm
    rules: [canary]
    backends:
      - {group: inference.networking.x-k8s.io, name: pool, weight: 90}
      - {group: inference.networking.k8s.io, name: pool, weight: 10}
"""

RETURN = r"""
routes:
  description: One entry per selected route (with O(splits), per split and selected route, in the order written).
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the route.
      type: str
      sample: default
    name:
      description: Name of the route.
      type: str
      sample: llm-route
    changed:
      description: Whether the route was (or, in check mode, would be) written.
      type: bool
      sample: true
    generation:
      description: C(metadata.generation) after the write (in check mode, the stored one).
      type: int
      sample: 3
    observed_generation:
      description: The oldest C(observedGeneration) of the C(Accepted) and C(ResolvedRefs) conditions over all
        parents as last read; null while some parent has not reported them.
      type: int
      sample: 3
    rules:
      description: The rules in scope with the weight of every backend before and after.
      type: list
      elements: dict
      contains:
        index:
          description: Position of the rule in C(spec.rules).
          type: int
          sample: 0
        name:
          description: The rule's name, null when it has none.
          type: str
          sample: null
        before:
          description: Backend (C(<group>/<kind>/<namespace>/<name>)) to weight before, defaults applied.
          type: dict
          sample: {"inference.networking.x-k8s.io/InferencePool/default/vllm-llama3-8b-instruct-preview": 1}
        after:
          description: Backend to weight after; a dropped backend is absent.
          type: dict
          sample: {"inference.networking.x-k8s.io/InferencePool/default/vllm-llama3-8b-instruct-preview": 50,
                   "inference.networking.k8s.io/InferencePool/default/vllm-llama3-8b-instruct-ga": 50}
diff:
  description: With C(--diff), one entry per changed route with its C(spec.rules) before and after.
  returned: when diff mode is on
  type: list
  elements: dict
  sample: [{"before_header": "HTTPRoute default/llm-route", "after_header": "HTTPRoute default/llm-route",
            "before": {"rules": []}, "after": {"rules": []}}]
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, route_writer, routes
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

BACKEND_OPTIONS = dict(
    group=dict(type="str", default=api.CORE_GROUP),
    kind=dict(type="str", default=api.GA_POOL.kind),
    name=dict(type="str", required=True),
    namespace=dict(type="str"),
    weight=dict(type="int", required=True),
)

OPTIONS = dict(
    namespace=dict(type="str"),
    routes=dict(type="list", elements="str"),
    route_selector=dict(type="str"),
    backends=dict(type="list", elements="dict", options=BACKEND_OPTIONS),
    splits=dict(type="list", elements="dict",
                options=dict(backends=dict(type="list", elements="dict", required=True, options=BACKEND_OPTIONS))),
    rules=dict(type="list", elements="raw"),
    add_missing=dict(type="bool", default=False),
    remove_zero=dict(type="bool", default=False),
    validate_backends=dict(type="bool", default=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=120),
    wait_sleep=dict(type="float", default=1),
)


def split_traffic(module, cluster):
    params = module.params
    backend_lists = [params["backends"]] if params["backends"] is not None else [
        split["backends"] for split in params["splits"]]
    splits = [routes.parse_split(backends, params["rules"], params["add_missing"], params["remove_zero"],
                                 params["namespace"]) for backends in backend_lists]
    return route_writer.split_traffic(
        cluster,
        splits,
        namespace=params["namespace"],
        names=params["routes"],
        selector=params["route_selector"],
        validate_backends=params["validate_backends"],
        wait=params["wait"],
        wait_timeout=params["wait_timeout"],
        wait_sleep=params["wait_sleep"],
        diff=module._diff,
    )


def main():
    run_module(
        OPTIONS,
        split_traffic,
        mutually_exclusive=[("routes", "route_selector"), ("backends", "splits")],
        required_one_of=[("backends", "splits")],
        required_by={"routes": "namespace"},
    )


if __name__ == "__main__":
    main()
