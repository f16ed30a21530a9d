#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: endpoint_probe
short_description: Send completion requests through an Inference Gateway and measure the answers
version_added: 1.0.0
description:
  - Does what the verification step of the GKE migration guide does with C(curl), N times and
    measured. It sends C(POST /v1/completions) with a JSON body of O(model), O(prompt), O(max_tokens)
    and O(temperature) to the Gateway and counts the answers.
  - The address is the one the guide uses, C(http://<status.addresses[0].value>:<listener port><path>)
    of the Gateway O(gateway_name), or O(url) when given.
  - Requests go out from at most O(concurrency) threads, each on a new connection, directly to the
    address (proxy settings are not used).
  - Reports the success ratio (share of the O(requests) answered with a 2xx status), latency
    percentiles, counts per status code and per value of a response header, and the first failures;
    then judges them against O(min_success_ratio) and O(max_p95_ms).
  - Bounded in every case. Each request gives up after O(timeout) seconds, and the whole probe after
    ceil(O(requests) / O(concurrency)) x O(timeout) + 5 seconds; requests not answered by then count
    as failed.
  - Only reads the Gateway from the cluster. The inference requests it sends are real.
author:
  - Inference Gateway migration maintainers (!UNKNOWN)
options:
  url:
    description:
      - The full URL to send to, for example C(http://203.0.113.10:80/v1/completions).
      - Overrides the Gateway lookup; O(gateway_name), O(listener) and O(path) are then not used.
      - One of O(url) and O(gateway_name) is required.
    type: str
  gateway_name:
    description:
      - The Gateway whose first address and listener port to send to.
    type: str
  gateway_namespace:
    description:
      - Namespace of O(gateway_name).
    type: str
    default: default
  listener:
    description:
      - Name of the Gateway listener whose port to use. The first listener when not set.
      - The listener must speak HTTP, as the guide's C(curl) does; for HTTPS give O(url).
    type: str
  path:
    description:
      - Request path appended to the Gateway's address.
    type: str
    default: /v1/completions
  model:
    description:
      - The C(model) field of the request, a model name the gateway serves (for example an
        InferenceModel's C(modelName) or an InferenceObjective's model).
    type: str
    required: true
  targets:
    description:
      - Probe several targets in one task, for example one per InferencePool of a migration (the
        P(inference_gateway.migration.gate_targets#filter) filter derives them from detection). Each target is
        probed on its own with the thresholds and request settings of this task; a field it leaves out takes
        the value of the option of the same name.
      - The result then adds up the counts, reports each latency figure of the worst target, passes only when
        every target passes, names each failing target first in RV(summary), and lists every target's result in
        RV(targets).
    type: list
    elements: dict
    suboptions:
      name:
        description: What the target proves, for messages (for example C(pool default/llm (HTTPRoute default/r rule 0))).
        type: str
        required: true
      url:
        description: As O(url).
        type: str
      gateway_name:
        description: As O(gateway_name).
        type: str
      gateway_namespace:
        description: As O(gateway_namespace).
        type: str
      listener:
        description: As O(listener).
        type: str
      path:
        description: As O(path).
        type: str
      headers:
        description: Headers added to O(headers) (a header named in both takes this value), for example a C(Host)
          and the headers the target's route rule matches.
        type: dict
      model:
        description: As O(model).
        type: str
  prompt:
    description:
      - The C(prompt) field of the request.
    type: str
    default: Hi
  max_tokens:
    description:
      - The C(max_tokens) field of the request.
    type: int
    default: 10
  temperature:
    description:
      - The C(temperature) field of the request.
    type: float
    default: 0
  headers:
    description:
      - Extra request headers. C(Content-Type) is C(application/json) unless set here.
    type: dict
    default: {}
  requests:
    description:
      - How many requests to send, from 1 to 100000.
    type: int
    default: 20
  concurrency:
    description:
      - How many requests may be in flight at once, from 1 to 64.
    type: int
    default: 4
  timeout:
    description:
      - Seconds one request may take, from connecting to the last byte of the answer.
    type: float
    default: 10
  min_success_ratio:
    description:
      - The lowest share of O(requests) answered with a 2xx status that passes, from 0 to 1.
    type: float
    default: 1.0
  max_p95_ms:
    description:
      - The highest 95th percentile latency in milliseconds that passes. Not judged when not set.
    type: float
  group_by_header:
    description:
      - Count the answers by the value of this response header (for example C(x-sandbox-pool), or a
        header your model servers set), to see which backend answered.
    type: str
  fail_on_threshold:
    description:
      - Fail the task when a threshold is not met. With V(false) the task reports RV(passed) and
        RV(reasons) and the caller decides (the C(verify) role asserts on them).
    type: bool
    default: false
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - inference_gateway.migration.cluster
  - inference_gateway.migration.cluster.read_only
attributes:
  check_mode:
    support: full
    details: The probe changes nothing in the cluster, so it runs the same in check mode and sends its requests.
notes:
  - The connection options are used only to read the Gateway; with O(url) the module makes no API
    call and needs no cluster credentials.
  - Latency percentiles are nearest-rank over the requests that got an HTTP response, whatever its
    status; requests without a response count under status code C(0).
seealso:
  - name: The verify role
    description: Runs this probe as one of the verification gates and asserts on its thresholds.
    link: https://example.invalid/inference-gateway/migration/blob/main/docs/verification.md
"""

EXAMPLES = r"""
- name: Send the guide's check request 20 times through inference-gateway
  inference_gateway.migration.endpoint_probe:
    gateway_name: inference-gateway
    model: meta-llama/Llama-3.1-8B-Instruct
    max_tokens: 100
  register: probe

- name: Probe two pools, each through its own route rule, in one task
  inference_gateway.migration.endpoint_probe:
    gateway_name: inference-gateway
    model: meta-llama/Llama-3.1-8B-Instruct
    targets:
      - name: pool default/llama
      - name: pool default/qwen
        headers:
          x-team: qwen
        model: Qwen/Qwen2.5-1.5B-Instruct

- name: Probe a known address, count answers per pool, and fail below 99 % or above 800 ms p95
  inference_gateway.migration.endpoint_probe:
    url: http://203.0.113.10:80/v1/completions
    model: food-review
    requests: 200
    concurrency: 8
    min_success_ratio: 0.99
    max_p95_ms: 800
    group_by_header: x-backend-pool
    fail_on_threshold: true
"""

RETURN = r"""
url:
  description: The URL the requests were sent to.
  returned: always
  type: str
  sample: http://203.0.113.10:80/v1/completions
requests:
  description: How many requests were planned (O(requests)).
  returned: always
  type: int
  sample: 20
sent:
  description: How many requests were started before the probe's deadline.
  returned: always
  type: int
  sample: 20
ok:
  description: How many requests were answered with a 2xx status.
  returned: always
  type: int
  sample: 19
failed_requests:
  description:
    - How many started requests got no 2xx answer (other status, error or timeout).
    - Not called C(failed), which Ansible reserves for the task's own failure.
  returned: always
  type: int
  sample: 1
success_ratio:
  description: RV(ok) divided by RV(requests), rounded to four decimals.
  returned: always
  type: float
  sample: 0.95
latency_ms:
  description: Latency percentiles in milliseconds over the requests that got an HTTP response; null when none did.
  returned: always
  type: dict
  contains:
    p50:
      description: Median.
      type: float
      sample: 41.2
    p95:
      description: 95th percentile.
      type: float
      sample: 88.0
    p99:
      description: 99th percentile.
      type: float
      sample: 97.5
    max:
      description: Slowest.
      type: float
      sample: 97.5
  sample: {"p50": 41.2, "p95": 88.0, "p99": 97.5, "max": 97.5}
status_codes:
  description: Count of answers per HTTP status code; C(0) counts requests that got no HTTP response.
  returned: always
  type: dict
  sample: {"200": 19, "503": 1}
by_header:
  description: Count of answers per value of the O(group_by_header) response header (C((absent)) when an
    answer lacks it); empty when O(group_by_header) is not set.
  returned: always
  type: dict
  sample: {"inference.networking.k8s.io/default/vllm-llama3-8b-instruct-ga": 12}
failure_samples:
  description: The first five failed requests, in the order they were planned.
  returned: always
  type: list
  elements: dict
  contains:
    request:
      description: Index of the request (from 0).
      type: int
    status:
      description: HTTP status, or 0 when no HTTP response came.
      type: int
    error:
      description: Why no HTTP response came (connection error, timeout); null when one came.
      type: str
    body:
      description: The first 300 characters of the response body.
      type: str
  sample: [{"request": 3, "status": 503, "error": null, "body": "no healthy upstream"}]
elapsed_seconds:
  description: Wall time the probe took.
  returned: always
  type: float
  sample: 1.284
passed:
  description: Whether every threshold was met.
  returned: always
  type: bool
  sample: false
reasons:
  description: One sentence per threshold not met, with the measured value; empty when RV(passed).
  returned: always
  type: list
  elements: str
  sample: ["success ratio 0.95 (19 of 20 requests answered 2xx) is below the minimum 1.0"]
summary:
  description: One line that says what was sent where and what came back, for logs and reports; with O(targets),
    one such line per target, those that failed first and marked C(FAILED).
  returned: always
  type: str
  sample: "19/20 requests to http://203.0.113.10:80/v1/completions answered 2xx (success ratio 0.95); ..."
targets:
  description: With O(targets), the result of each target, in the order given, with its C(name) and the fields
    above.
  returned: when O(targets) is set
  type: list
  elements: dict
  sample: [{"name": "pool default/llm-preview (HTTPRoute default/llm-route rule 0)", "passed": true, "ok": 20}]
"""

from ansible_collections.inference_gateway.migration.plugins.module_utils import api, probe
from ansible_collections.inference_gateway.migration.plugins.module_utils.errors import MigrationError
from ansible_collections.inference_gateway.migration.plugins.module_utils.module import run_module

OPTIONS = dict(
    url=dict(type="str"),
    gateway_name=dict(type="str"),
    gateway_namespace=dict(type="str", default="default"),
    listener=dict(type="str"),
    path=dict(type="str", default=probe.DEFAULT_PATH),
    model=dict(type="str", required=True),
    prompt=dict(type="str", default="Hi"),
    max_tokens=dict(type="int", default=10, no_log=False),
    temperature=dict(type="float", default=0),
    headers=dict(type="dict", default={}),
    targets=dict(type="list", elements="dict", options=dict(
        name=dict(type="str", required=True), url=dict(type="str"), gateway_name=dict(type="str"),
        gateway_namespace=dict(type="str"), listener=dict(type="str"), path=dict(type="str"),
        headers=dict(type="dict"), model=dict(type="str"))),
    requests=dict(type="int", default=20),
    concurrency=dict(type="int", default=4),
    timeout=dict(type="float", default=10),
    min_success_ratio=dict(type="float", default=1.0),
    max_p95_ms=dict(type="float"),
    group_by_header=dict(type="str"),
    fail_on_threshold=dict(type="bool", default=False),
)


def target_url(cluster, params):
    if params["url"]:
        return params["url"]
    name, namespace = params["gateway_name"], params["gateway_namespace"]
    if not name:
        raise MigrationError("give url or gateway_name (here or in the target)")
    gateway = cluster.get(api.GATEWAY, name, namespace)
    if gateway is None:
        raise MigrationError("%s %s/%s not found: give the name and namespace of the Gateway the routes attach to, "
                             "or a url" % (api.GATEWAY.kind, namespace, name))
    return probe.gateway_url(gateway, params["listener"], params["path"])


def probe_one(cluster, params):
    return probe.probe(
        target_url(cluster, params), params["model"], prompt=params["prompt"], max_tokens=params["max_tokens"],
        temperature=params["temperature"], headers=params["headers"], requests=params["requests"],
        concurrency=params["concurrency"], timeout=params["timeout"], min_success_ratio=params["min_success_ratio"],
        max_p95_ms=params["max_p95_ms"], group_by_header=params["group_by_header"],
    )


def target_params(params, target):
    """The task's options with a target's own fields; a target that names its own Gateway does not inherit the
    task's url."""
    merged = dict(params)
    if target.get("gateway_name") and not target.get("url"):
        merged["url"] = None
    merged.update((key, value) for key, value in target.items() if value is not None and key != "name")
    merged["headers"] = dict(params["headers"] or {}, **(target.get("headers") or {}))
    return merged


def run_probe(module, cluster):
    params = module.params
    if params["targets"]:
        result = probe.combine((target["name"], probe_one(cluster, target_params(params, target)))
                               for target in params["targets"])
    else:
        result = probe_one(cluster, params)
    result["changed"] = False
    if params["fail_on_threshold"] and not result["passed"]:
        raise MigrationError("endpoint probe failed its thresholds: %s" % result["summary"], **result)
    return result


def main():
    run_module(OPTIONS, run_probe, required_one_of=[("url", "gateway_name")])


if __name__ == "__main__":
    main()
