"""OpenAI-compatible stand-ins for the vLLM pods of the sandbox.

kwok pods run nothing, so every Ready model-server pod gets a small HTTP server that
answers the way vLLM answers for the models named in that pod's container args, at
the pod's IP and port inside the sandbox's pod network (netns.py), where the real
endpoint picker scrapes its metrics and the gateway forwards to it. The gateway
process starts and stops these servers as pods come and go (see ModelServerFleet).

Every response names the pod that served it (header and JSON body) and echoes
the pool the gateway routed through, so tests and the load generator can tell
which backend answered.

GET /metrics serves the vLLM metrics that the real endpoint picker of each GIE release
in versions.GIE_RELEASES scrapes (vllm_metrics_text), with values true of the simulator.
"""

import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POOL_HEADER = "x-sandbox-pool"
POD_HEADER = "x-sandbox-pod"
DEFAULT_VLLM_PORT = 8000
# vLLM's default --max-num-seqs: how many requests one engine step batches; the rest wait.
DEFAULT_MAX_NUM_SEQS = 256
# Enough tokens to look like an answer; the body stays small so that the data
# plane can sustain the request rates the tests need on two cores.
MAX_GENERATED_TOKENS = 16
# vLLM's default KV-cache block size (tokens per block), as its cache_config_info reports it.
CACHE_BLOCK_SIZE = 16

log = logging.getLogger("igw_sandbox.modelserver")


@dataclass(frozen=True)
class ServedModels:
    """What a vLLM server started with given args would answer for."""

    base: str
    loras: tuple[str, ...]
    port: int
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS

    @property
    def names(self):
        return (self.base, *self.loras)


def _option_values(argv, flag):
    """Values of the last occurrence of `flag` (argparse semantics, nargs='+')."""
    values = None
    index = 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if token.startswith(flag + "="):
            values = [token[len(flag) + 1:]]
        elif token == flag:
            values = []
            while index < len(argv) and not argv[index].startswith("--"):
                values.append(argv[index])
                index += 1
    return values


def _lora_name(module):
    # vLLM accepts both "name=path" and a JSON object with a "name" key.
    if module.lstrip().startswith("{"):
        return json.loads(module)["name"]
    return module.split("=", 1)[0]


def parse_vllm_args(argv):
    """ServedModels for a vLLM command line, or None when it starts no model server."""
    model = _option_values(argv, "--model")
    if not model:
        return None
    served_names = _option_values(argv, "--served-model-name") or model[:1]
    loras = tuple(_lora_name(m) for m in _option_values(argv, "--lora-modules") or [])
    port = _option_values(argv, "--port")
    max_num_seqs = _option_values(argv, "--max-num-seqs")
    return ServedModels(base=served_names[0], loras=loras,
                        port=int(port[0]) if port else DEFAULT_VLLM_PORT,
                        max_num_seqs=int(max_num_seqs[0]) if max_num_seqs else DEFAULT_MAX_NUM_SEQS)


def pod_served_models(pod):
    """ServedModels of the first container of `pod` that runs vLLM, else None."""
    for container in pod.get("spec", {}).get("containers", []):
        served = parse_vllm_args([*container.get("command", []), *container.get("args", [])])
        if served:
            return served
    return None


def _not_found_body(model):
    # vLLM's own wording and shape for an unknown model.
    return {"object": "error", "message": f"The model `{model}` does not exist.",
            "type": "NotFoundError", "param": None, "code": 404}


def _label_value(value):
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name, labels, value):
    rendered = ",".join(f'{key}="{_label_value(str(text))}"' for key, text in labels.items())
    return f"{name}{{{rendered}}} {value}"


def vllm_metrics_text(served, running, waiting, succeeded, now):
    """The Prometheus text exposition of a simulated vLLM pod, as vLLM names and labels it.

    v0.3.0, v0.5.1 and v1.0.0 read three metrics by default: vllm:num_requests_waiting (queue
    size), vllm:gpu_cache_usage_perc (KV-cache use, 0..1) and vllm:lora_requests_info (adapters,
    from its labels). v1.3.0 and v1.5.0 read the KV-cache use under vLLM 0.10's name
    vllm:kv_cache_usage_perc, and also vllm:num_requests_running and vllm:cache_config_info
    (labels block_size and num_gpu_blocks); vLLM 0.10 exports both KV-cache names, and so does the
    simulator. `running` and `waiting` are the pod's in-flight requests inside and beyond its
    batch of `max_num_seqs`.
    """
    model = {"model_name": served.base}
    lines = [
        "# HELP vllm:num_requests_running Number of requests currently running on GPU.",
        "# TYPE vllm:num_requests_running gauge",
        _sample("vllm:num_requests_running", model, running),
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
        "# TYPE vllm:num_requests_waiting gauge",
        _sample("vllm:num_requests_waiting", model, waiting),
        # Each running request holds an equal share of the cache: a full batch fills it.
        "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.",
        "# TYPE vllm:gpu_cache_usage_perc gauge",
        _sample("vllm:gpu_cache_usage_perc", model, f"{min(1.0, running / served.max_num_seqs):.6g}"),
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        _sample("vllm:kv_cache_usage_perc", model, f"{min(1.0, running / served.max_num_seqs):.6g}"),
        # vLLM labels an info gauge (value 1) with its cache configuration. One block per batch slot keeps
        # the usage above true: a full batch holds every block.
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig",
        "# TYPE vllm:cache_config_info gauge",
        _sample("vllm:cache_config_info", {"block_size": CACHE_BLOCK_SIZE, "num_gpu_blocks": served.max_num_seqs}, 1),
    ]
    if served.loras:
        # vLLM exports this only with LoRA enabled (the simulator: when the pod serves adapters). The
        # simulator keeps every adapter it serves loaded, so all are running and none waits to be
        # loaded; max_lora leaves room for one more, as the simulator has no adapter limit. So the
        # LoRA filter of v0.3.0 and v0.5.1 (the adapter is active, or the pod has room under
        # max_lora) passes for the base model and every adapter the pod serves. The value is the
        # time the labels were observed, as vLLM sets it: the EPP reads the newest series.
        lora_info = {"max_lora": len(served.loras) + 1, "running_lora_adapters": ",".join(served.loras),
                     "waiting_lora_adapters": ""}
        lines += [
            "# HELP vllm:lora_requests_info Running stats on lora requests.",
            "# TYPE vllm:lora_requests_info gauge",
            _sample("vllm:lora_requests_info", lora_info, f"{now:.3f}"),
        ]
    lines += [
        "# HELP vllm:request_success_total Count of successfully processed requests.",
        "# TYPE vllm:request_success_total counter",
    ]
    lines += [_sample("vllm:request_success_total", {"finished_reason": "length", "model_name": name}, count)
              for name, count in sorted(succeeded.items())]
    return "\n".join(lines) + "\n"


class _ServerState:
    def __init__(self, pod_id, served, latency):
        self.pod_id = pod_id
        self.served = served
        self.latency = latency
        self.lock = threading.Lock()
        self.slot_freed = threading.Condition(self.lock)
        self.running = 0
        self.waiting = 0
        self.succeeded = {}

    def begin(self):
        """Take one of the pod's max_num_seqs batch slots, waiting for one as vLLM queues requests."""
        with self.slot_freed:
            self.waiting += 1
            self.slot_freed.wait_for(lambda: self.running < self.served.max_num_seqs)
            self.waiting -= 1
            self.running += 1

    def end(self, model):
        with self.slot_freed:
            self.running -= 1
            if model is not None:
                self.succeeded[model] = self.succeeded.get(model, 0) + 1
            self.slot_freed.notify()

    def metrics_text(self):
        with self.lock:
            running, waiting, succeeded = self.running, self.waiting, dict(self.succeeded)
        return vllm_metrics_text(self.served, running, waiting, succeeded, time.time())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "igw-sandbox-vllm"
    timeout = 60  # idle keep-alive connections from the gateway are closed after this

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        log.debug("%s %s", self.server.state.pod_id, format % args)

    def _send(self, status, body, content_type="application/json", extra_headers=()):
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header(POD_HEADER, self.server.state.pod_id)
        pool = self.headers.get(POOL_HEADER)
        if pool:
            self.send_header(POOL_HEADER, pool)
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        state = self.server.state
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(200, b"", content_type="text/plain")
        elif path == "/metrics":
            self._send(200, state.metrics_text().encode(), content_type="text/plain; version=0.0.4")
        elif path == "/v1/models":
            created = int(time.time())
            data = [{"id": state.served.base, "object": "model", "created": created, "owned_by": "vllm",
                     "root": state.served.base, "parent": None}]
            data += [{"id": lora, "object": "model", "created": created, "owned_by": "vllm",
                      "root": lora, "parent": state.served.base} for lora in state.served.loras]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, {"detail": "Not Found"})

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path not in ("/v1/completions", "/v1/chat/completions"):
            self._send(404, {"detail": "Not Found"})
            return
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"object": "error", "message": "request body is not JSON",
                             "type": "BadRequestError", "param": None, "code": 400})
            return
        self._complete(request, chat=path.endswith("/chat/completions"))

    def _complete(self, request, chat):
        state = self.server.state
        model = request.get("model")
        if model not in state.served.names:
            self._send(404, _not_found_body(model))
            return
        state.begin()
        try:
            time.sleep(state.latency)
            tokens = min(int(request.get("max_tokens") or MAX_GENERATED_TOKENS), MAX_GENERATED_TOKENS)
            text = " ".join(["sandbox"] * tokens)
            body = {
                "id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex,
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "finish_reason": "length", "logprobs": None,
                             **({"message": {"role": "assistant", "content": text}} if chat else {"text": text})}],
                "usage": {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1},
                "sandbox": {"pod": state.pod_id, "pool": self.headers.get(POOL_HEADER), "model": model},
            }
        finally:
            state.end(model)
        if request.get("stream"):
            chunk = dict(body, object="chat.completion.chunk" if chat else "text_completion")
            events = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
            self._send(200, events, content_type="text/event-stream")
        else:
            self._send(200, body)


class SandboxHTTPServer(ThreadingHTTPServer):
    """A thread per connection that never delays exit, and a listen backlog deep enough for a
    burst of new keep-alive connections (the default of 5 makes clients wait for SYN retries).

    Closing the server also ends the keep-alive connections it has accepted. ``shutdown`` only stops
    accepting: a client that keeps using a kept connection (the EPP relay's pool does) would otherwise go
    on being answered by a deleted pod, whose models may differ from those of the new pod at its IP."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, *args, **kwargs):
        self._accepted = set()
        self._accepted_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._accepted_lock:
            self._accepted.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._accepted_lock:
            self._accepted.discard(request)
        super().shutdown_request(request)

    def server_close(self):
        super().server_close()
        with self._accepted_lock:
            accepted = list(self._accepted)
        for connection in accepted:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # the client closed it first
                pass


class ModelServer:
    """One simulated vLLM pod listening at its pod IP and port."""

    def __init__(self, pod_id, served, latency, ip, port=None):
        """Listens at ``ip`` and the port vLLM was started with, unless ``port`` says otherwise (0: any)."""
        self.served = served
        self.ip = ip
        self._httpd = SandboxHTTPServer((ip, served.port if port is None else port), _Handler)
        self._httpd.state = _ServerState(pod_id, served, latency)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"modelserver {pod_id}", daemon=True)
        self._thread.start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


def model_server_pods(pods):
    """{pod uid: (pod id "ns/name", ServedModels, pod IP)} of the ready pods that run vLLM."""
    wanted = {}
    for pod in pods or []:
        status = pod.get("status", {})
        ready = status.get("phase") == "Running" and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
        served = pod_served_models(pod) if ready and status.get("podIP") else None
        if served and not pod["metadata"].get("deletionTimestamp"):
            meta = pod["metadata"]
            wanted[meta["uid"]] = (f"{meta['namespace']}/{meta['name']}", served, status["podIP"])
    return wanted


class ModelServerFleet:
    """The set of simulated pods, kept equal to the ready model-server pods the API server lists."""

    def __init__(self, latency, pod_network=None):
        """``pod_network``: where pod IPs are added (netns.PodNetwork); None when they already exist (tests)."""
        self.latency = latency
        self.pod_network = pod_network
        self._servers = {}
        self._lock = threading.Lock()

    def sync(self, pods):
        """Run a server for exactly the ready model-server pods among ``pods`` (as the API server lists them)."""
        wanted = model_server_pods(pods)
        with self._lock:
            for uid in [uid for uid, (pod_id, server) in self._servers.items()
                        if uid not in wanted or (pod_id, server.served, server.ip) != wanted[uid]]:
                self._stop(uid)
            for uid, (pod_id, served, ip) in wanted.items():
                if uid in self._servers:
                    continue
                # kwok may give a new pod the IP of one just deleted: free the address first.
                for other in [u for u, (_p, s) in self._servers.items() if (s.ip, s.port) == (ip, served.port)]:
                    self._stop(other)
                if self.pod_network:
                    self.pod_network.add_pod_address(ip)
                try:
                    server = ModelServer(pod_id, served, self.latency, ip)
                except OSError as error:
                    log.warning("model server for %s cannot listen on %s:%d: %s", pod_id, ip, served.port, error)
                    continue
                self._servers[uid] = (pod_id, server)
                log.info("model server for %s serves %s on %s:%d", pod_id, list(served.names), ip, server.port)

    def _stop(self, uid):
        pod_id, server = self._servers.pop(uid)
        server.stop()
        if self.pod_network and not any(s.ip == server.ip for _p, s in self._servers.values()):
            self.pod_network.remove_pod_address(server.ip)
        log.info("stopped model server for %s", pod_id)

    def describe(self):
        with self._lock:
            return {pod_id: {"address": f"{server.ip}:{server.port}", "models": list(server.served.names)}
                    for pod_id, server in self._servers.values()}

    def close(self):
        self.sync([])
