"""The gateway's client of Envoy's external processing (ext_proc) protocol, spoken to the real endpoint picker (EPP).

GKE's load balancer asks the InferencePool's EPP where to send each request over one bidirectional gRPC stream
per HTTP request (/envoy.service.ext_proc.v3.ExternalProcessor/Process): it sends the request headers and body,
reads where to route and what to change, forwards the request, then sends the response headers and body and
reads what the client gets. This module does the same, with the protobuf wire format coded by hand.

Field numbers are those of the generated Go code that the EPP releases build with (protobuf struct tags in
github.com/envoyproxy/go-control-plane/envoy@v1.32.4):
  service/ext_proc/v3/external_processor.pb.go: ProcessingRequest, HttpHeaders, HttpBody, ProcessingResponse,
      HeadersResponse, BodyResponse, CommonResponse, HeaderMutation, BodyMutation, StreamedBodyResponse,
      ImmediateResponse
  config/core/v3/base.pb.go: HeaderMap, HeaderValue, HeaderValueOption
  type/v3/http_status.pb.go: HttpStatus
and google.golang.org/protobuf@v1.36.4 (the version it requires) types/known/structpb/struct.pb.go: Struct, Value,
ListValue.

How the EPP releases answer (read from pkg/epp/handlers/ of each release; all use go-control-plane v1.32.4).
The endpoint is always in dynamic_metadata {"envoy.lb": {"x-gateway-destination-endpoint": "ip:port"}} and in
a set header x-gateway-destination-endpoint (v0.3.0 and v0.5.1 take both names from flags, with these defaults).

  release, server           | request_headers answered       | endpoint and header mutations in       | body answers
  --------------------------+--------------------------------+----------------------------------------+----------------
  v0.3.0 server.go          | at once, clear_route_cache     | the request_body answer: endpoint,     | one whole-body
  (cmd/epp's default:       | only, no endpoint (so a        | Content-Length; body_mutation.body     | mutation; each
  USE_STREAMING unset)      | body-less request gets none)   | (buffered: one body message expected)  | response_body
                            |                                |                                        | gets an empty
                            |                                |                                        | answer
  v0.3.0 streamingserver.go | after the body's end_of_stream | the request_headers answer: endpoint,  | one streamed_
  (USE_STREAMING=true, as   | (at once, to a random pod, if  | Content-Length                         | response with
  the v0.3.0 chart sets it) | request_headers end the stream)|                                        | the whole body
  v0.5.1, v1.0.0 server.go  | as v0.3.0 streamingserver.go   | the request_headers answer: endpoint,  | streamed_
  (the only server)         |                                | Content-Length, and every request      | response chunks
                            |                                | header echoed; v1.0.0 adds x-request-id| of <= 62000
                            |                                | when absent, and may name several      | bytes, the last
                            |                                | endpoints, comma-separated             | end_of_stream

Responses: every release answers response_headers at once (set header x-went-into-resp-headers: true; v0.5.1 and
v1.0.0 also echo every response header). The streaming servers re-marshal a JSON response body and answer it
after its end_of_stream (an event stream passes through chunk by chunk); v0.3.0's server.go leaves it as is.
Errors come as an immediate_response to the request (429, 500, 503, 400, 404; with the error text as body from
v0.5.1 on), other failures as a gRPC error status. No release answers a response with an immediate_response.
"""

import queue
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

_METHOD = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"
ENDPOINT_METADATA_NAMESPACE = "envoy.lb"
ENDPOINT_KEY = "x-gateway-destination-endpoint"

_VARINT, _I64, _LEN, _START_GROUP, _END_GROUP, _I32 = range(6)
# ProcessingRequest's oneof fields.
_HEADERS_FIELD = {"request": 2, "response": 3}
_BODY_FIELD = {"request": 4, "response": 5}
# ProcessingResponse's oneof fields that this client handles; trailers (5, 6) and unknown ones are left as None.
_RESPONSE_KINDS = {1: "request_headers", 2: "response_headers", 3: "request_body", 4: "response_body",
                   7: "immediate_response"}


class ExtProcError(Exception):
    """The EPP could not be asked or did not answer as the protocol requires; the pool's failureMode applies."""


# ---- Encoding what the gateway sends (ProcessingRequest) ----

def _varint(value):
    encoded = bytearray()
    while value > 0x7F:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    encoded.append(value)
    return bytes(encoded)


def _len_field(number, payload):
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


# proto3 leaves out empty strings and bytes and false booleans, as Go's marshaller does.
def _optional_len_field(number, payload):
    return _len_field(number, payload) if payload else b""


def _bool_field(number, flag):
    return _varint(number << 3 | _VARINT) + b"\x01" if flag else b""


def encode_headers(phase: str, headers: Sequence[tuple[str, str]], end_of_stream: bool) -> bytes:
    """ProcessingRequest with request_headers or response_headers (phase "request" or "response").

    Values go in raw_value, as Envoy sends them and as the EPPs read them; HTTP header text is Latin-1.
    """
    header_map = b"".join(
        _len_field(1, _optional_len_field(1, name.encode()) + _optional_len_field(3, value.encode("latin-1")))
        for name, value in headers)
    http_headers = _len_field(1, header_map) + _bool_field(3, end_of_stream)
    return _len_field(_HEADERS_FIELD[phase], http_headers)


def encode_body(phase: str, body: bytes, end_of_stream: bool) -> bytes:
    """ProcessingRequest with request_body or response_body (phase "request" or "response")."""
    return _len_field(_BODY_FIELD[phase], _optional_len_field(1, body) + _bool_field(2, end_of_stream))


# ---- Decoding what the EPP answers (ProcessingResponse) ----

def _read_varint(data, position):
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _take(data, position, length):
    end = position + length
    if end > len(data):
        raise ValueError("truncated field")
    return data[position:end], end


def _read_field(data, position):
    """One field at position: (number, wire type, value, next position); a group's value is None."""
    key, position = _read_varint(data, position)
    number, wire_type = key >> 3, key & 7
    if wire_type == _VARINT:
        value, position = _read_varint(data, position)
    elif wire_type == _I64:
        value, position = _take(data, position, 8)
    elif wire_type == _LEN:
        length, position = _read_varint(data, position)
        value, position = _take(data, position, length)
    elif wire_type == _I32:
        value, position = _take(data, position, 4)
    elif wire_type == _START_GROUP:
        value, position = None, _skip_group(data, position, number)
    elif wire_type == _END_GROUP:
        value = None
    else:
        raise ValueError(f"invalid wire type {wire_type}")
    return number, wire_type, value, position


def _skip_group(data, position, number):
    while position < len(data):
        inner_number, wire_type, _value, position = _read_field(data, position)
        if wire_type == _END_GROUP:
            if inner_number != number:
                raise ValueError(f"group {number} ended by {inner_number}")
            return position
    raise ValueError(f"group {number} not ended")


class _Fields:
    """A message's fields by (number, wire type); fields never asked for (unknown ones) are thereby skipped."""

    def __init__(self, data):
        self._values = {}
        position = 0
        while position < len(data):
            number, wire_type, value, position = _read_field(data, position)
            if wire_type == _END_GROUP:
                raise ValueError(f"group {number} ended but never started")
            self._values.setdefault((number, wire_type), []).append(value)

    def all(self, number, wire_type):
        return self._values.get((number, wire_type), [])

    def has(self, number, wire_type):
        return (number, wire_type) in self._values

    def last(self, number, wire_type, default):
        """proto3: the last occurrence of a singular field wins."""
        values = self.all(number, wire_type)
        return values[-1] if values else default


def _decode_value(data):
    """google.protobuf.Value as the Python value JSON would give; null_value and an unset kind are None."""
    value = _Fields(data)
    if value.has(2, _I64):
        return struct.unpack("<d", value.last(2, _I64, None))[0]
    if value.has(3, _LEN):
        return value.last(3, _LEN, None).decode()
    if value.has(4, _VARINT):
        return bool(value.last(4, _VARINT, None))
    if value.has(5, _LEN):
        return _decode_struct(value.last(5, _LEN, None))
    if value.has(6, _LEN):
        return [_decode_value(item) for item in _Fields(value.last(6, _LEN, None)).all(1, _LEN)]
    return None


def _decode_struct(data: bytes) -> dict:
    """google.protobuf.Struct as a dict."""
    decoded = {}
    for entry in _Fields(data).all(1, _LEN):
        fields = _Fields(entry)
        decoded[fields.last(1, _LEN, b"").decode()] = _decode_value(fields.last(2, _LEN, b""))
    return decoded


@dataclass(frozen=True)
class HeaderMutation:
    set_headers: tuple = ()  # (name, value) pairs, in the order given; names as the EPP wrote them
    remove_headers: tuple = ()


@dataclass(frozen=True)
class BodyMutation:
    kind: str  # "body" (replace the whole body), "clear_body" or "streamed_response" (one chunk)
    body: bytes = b""
    end_of_stream: bool = False  # streamed_response only


@dataclass(frozen=True)
class CommonResponse:
    status: int = 0  # 0 CONTINUE, 1 CONTINUE_AND_REPLACE
    header_mutation: HeaderMutation = HeaderMutation()
    body_mutation: BodyMutation | None = None
    clear_route_cache: bool = False


@dataclass(frozen=True)
class ImmediateResponse:
    status: int  # HTTP status code; 0 if the EPP set none
    headers: HeaderMutation
    body: bytes
    details: str


@dataclass(frozen=True)
class ProcessingResponse:
    kind: str | None  # a _RESPONSE_KINDS value; None for trailers, unknown kinds, or none set
    common: CommonResponse | None  # for the headers and body kinds
    immediate: ImmediateResponse | None
    dynamic_metadata: dict


def _decode_header_mutation(data):
    mutation = _Fields(data)
    set_headers = []
    for option in mutation.all(1, _LEN):
        header = _Fields(_Fields(option).last(1, _LEN, b""))
        name = header.last(1, _LEN, b"").decode()
        if header.has(3, _LEN):
            set_headers.append((name, header.last(3, _LEN, None).decode("latin-1")))
        else:
            set_headers.append((name, header.last(2, _LEN, b"").decode()))
    return HeaderMutation(tuple(set_headers), tuple(name.decode() for name in mutation.all(2, _LEN)))


def _decode_body_mutation(data):
    mutation = _Fields(data)
    if mutation.has(1, _LEN):
        return BodyMutation("body", mutation.last(1, _LEN, None))
    if mutation.has(2, _VARINT):
        return BodyMutation("clear_body")
    if mutation.has(3, _LEN):
        streamed = _Fields(mutation.last(3, _LEN, None))
        return BodyMutation("streamed_response", streamed.last(1, _LEN, b""), bool(streamed.last(2, _VARINT, 0)))
    return None


def _decode_common_response(data):
    common = _Fields(data)
    body_mutation = common.last(3, _LEN, None)
    return CommonResponse(
        status=common.last(1, _VARINT, 0),
        header_mutation=_decode_header_mutation(common.last(2, _LEN, b"")),
        body_mutation=None if body_mutation is None else _decode_body_mutation(body_mutation),
        clear_route_cache=bool(common.last(5, _VARINT, 0)))


def _decode_immediate_response(data):
    immediate = _Fields(data)
    return ImmediateResponse(
        status=_Fields(immediate.last(1, _LEN, b"")).last(1, _VARINT, 0),
        headers=_decode_header_mutation(immediate.last(2, _LEN, b"")),
        body=immediate.last(3, _LEN, b""),
        details=immediate.last(5, _LEN, b"").decode())


def decode_processing_response(data: bytes) -> ProcessingResponse:
    """ProcessingResponse; raises ValueError on malformed bytes."""
    response = _Fields(data)
    number, kind = next(((number, kind) for number, kind in _RESPONSE_KINDS.items() if response.has(number, _LEN)),
                        (None, None))
    common = immediate = None
    if kind == "immediate_response":
        immediate = _decode_immediate_response(response.last(number, _LEN, None))
    elif kind is not None:
        # HeadersResponse and BodyResponse both hold just the CommonResponse, as field 1.
        common = _decode_common_response(_Fields(response.last(number, _LEN, None)).last(1, _LEN, b""))
    return ProcessingResponse(kind, common, immediate, _decode_struct(response.last(8, _LEN, b"")))


# ---- The client ----

@dataclass(frozen=True)
class RequestDecision:
    """What the EPP decided for a request: an immediate response, or where and what to send upstream."""

    endpoints: tuple = ()  # "ip:port" of the chosen model servers, the primary first
    set_headers: tuple = ()  # (name, value) pairs to set on the upstream request, in the EPP's order
    remove_headers: tuple = ()
    body: bytes | None = None  # the body to send upstream; None: the original one
    immediate: ImmediateResponse | None = None  # if set, answer the client with it and send nothing upstream

    @property
    def endpoint(self):
        return self.endpoints[0] if self.endpoints else None


@dataclass(frozen=True)
class ResponseDecision:
    """What the client gets from the model server's response."""

    body: bytes
    set_headers: tuple = ()  # (name, value) pairs to set on the client's response
    remove_headers: tuple = ()


def _is_last_body_answer(mutation):
    return mutation is None or mutation.kind != "streamed_response" or mutation.end_of_stream


def _mutated_body(body, mutation):
    if mutation is None:
        return body
    if mutation.kind == "streamed_response":
        return (body or b"") + mutation.body
    return mutation.body  # a replacement; b"" for clear_body


def _endpoints(answers, set_headers):
    """From dynamic metadata, as GKE reads it, else from the header mutation; a list is comma-separated."""
    value = None
    for answer in answers:
        namespace = answer.dynamic_metadata.get(ENDPOINT_METADATA_NAMESPACE)
        if isinstance(namespace, dict) and isinstance(namespace.get(ENDPOINT_KEY), str):
            value = namespace[ENDPOINT_KEY]
    if value is None:
        value = next((v for name, v in reversed(set_headers) if name.lower() == ENDPOINT_KEY), "")
    return tuple(endpoint.strip() for endpoint in value.split(",") if endpoint.strip())


def _mutations(answers):
    set_headers, remove_headers, body = [], [], None
    for answer in answers:
        set_headers += answer.common.header_mutation.set_headers
        remove_headers += answer.common.header_mutation.remove_headers
        body = _mutated_body(body, answer.common.body_mutation)
    return tuple(set_headers), tuple(remove_headers), body


def _as_envoy_sends(headers):
    # Envoy hands header names over in lower case, and the EPPs match some exactly (content-type, x-gateway-*).
    return [(name.lower(), value) for name, value in headers]


_HALF_CLOSE = object()
_STREAM_END = object()


class ExtProcSession:
    """One HTTP request's exchange with the EPP, on one stream. Use it from one thread; `with` closes it."""

    def __init__(self, process, target, timeout):
        self._target = target
        self._timeout = timeout
        self._outgoing = queue.SimpleQueue()
        self._incoming = queue.SimpleQueue()
        self._open = True
        self._call = process(iter(self._outgoing.get, _HALF_CLOSE))
        # gRPC's stream iterator has no read timeout: a reader thread lets each wait for an answer be bounded.
        threading.Thread(target=self._read, name=f"extproc-{target}", daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _read(self):
        try:
            for message in self._call:
                self._incoming.put(message)
            self._incoming.put(_STREAM_END)
        except grpc.RpcError as error:
            self._incoming.put(error)

    def _fail(self, reason):
        self._open = False
        self._outgoing.put(_HALF_CLOSE)  # releases gRPC's thread that reads our requests
        self._call.cancel()
        return ExtProcError(f"ext_proc stream to EPP {self._target}: {reason}")

    def _receive(self, awaited):
        try:
            item = self._incoming.get(timeout=self._timeout)
        except queue.Empty:
            raise self._fail(f"no answer to the {awaited} within {self._timeout}s") from None
        if item is _STREAM_END:
            raise self._fail(f"stream ended before the answer to the {awaited}")
        if isinstance(item, grpc.RpcError):
            raise self._fail(f"gRPC status {item.code().name}: {item.details()}")
        try:
            return decode_processing_response(item)
        except ValueError as error:
            raise self._fail(f"undecodable answer to the {awaited}: {error}") from None

    def _exchange(self, phase, headers, body):
        """Sends one phase's headers, then its whole body in one message (as Envoy sends it in buffered mode,
        which v0.3.0's server.go needs, and a valid full-duplex stream for the others), and returns the answers
        up to the headers answer and the last body answer, whatever their order; or up to an answer of another
        kind, which ends the list."""
        if not self._open:
            raise ExtProcError(f"ext_proc stream to EPP {self._target}: already closed")
        self._outgoing.put(encode_headers(phase, headers, end_of_stream=not body))
        if body:
            self._outgoing.put(encode_body(phase, body, end_of_stream=True))
        answers = []
        headers_answered, body_answered = False, not body
        while not (headers_answered and body_answered):
            answer = self._receive(f"{phase} body" if headers_answered else f"{phase} headers")
            answers.append(answer)
            if answer.kind == f"{phase}_headers":
                headers_answered = True
            elif answer.kind == f"{phase}_body":
                body_answered = _is_last_body_answer(answer.common.body_mutation)
            else:
                break
        return answers

    def request(self, headers: Sequence[tuple[str, str]], body: bytes) -> RequestDecision:
        """Asks the EPP about a request: headers are (name, value) pairs, pseudo-headers (:method, :path,
        :authority, :scheme) included as Envoy sends them; body is the whole request body."""
        answers = self._exchange("request", _as_envoy_sends(headers), body)
        last = answers[-1]
        if last.kind == "immediate_response":
            self.close()
            return RequestDecision(immediate=last.immediate)
        if last.kind not in ("request_headers", "request_body"):
            raise self._fail(f"answered the request with {last.kind or 'an unknown message'}")
        set_headers, remove_headers, new_body = _mutations(answers)
        endpoints = _endpoints(answers, set_headers)
        if not endpoints:
            raise self._fail("answered the request without a destination endpoint")
        return RequestDecision(endpoints, set_headers, remove_headers, new_body)

    def response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> ResponseDecision:
        """Passes the model server's response through the EPP, then closes the stream.

        The status goes as ":status", as Envoy sends it. Every release looks for "status" instead (to count
        model-server errors in a metric), so with Envoy, and here, that branch never runs; v0.3.0's server.go
        would also misread it (it compares the value's first byte with "200").
        """
        answers = self._exchange("response", [(":status", str(status))] + _as_envoy_sends(headers), body)
        # Any other answer (v0.3.0's server.go sends an empty message for a body that is not JSON) is one
        # Envoy calls spurious: it closes the stream and lets the response through as it stands.
        processed = [answer for answer in answers if answer.kind in ("response_headers", "response_body")]
        set_headers, remove_headers, new_body = _mutations(processed)
        self.close()
        return ResponseDecision(body if new_body is None else new_body, set_headers, remove_headers)

    def close(self) -> None:
        """Half-closes the stream and waits, at most the timeout, for the EPP to end it; then cancels it."""
        if not self._open:
            return
        self._open = False
        self._outgoing.put(_HALF_CLOSE)
        try:
            while True:
                item = self._incoming.get(timeout=self._timeout)
                if item is _STREAM_END or isinstance(item, grpc.RpcError):
                    break
        except queue.Empty:
            pass
        self._call.cancel()


class ExtProcClient:
    """The gateway's connection to one EPP address ("ip:port"); thread-safe, one session per HTTP request.

    timeout bounds each wait for an answer, as Envoy's ext_proc message_timeout does (GKE's routing
    extensions have one too: 1s in the GIE chart's GKE template for the body-based router).
    """

    def __init__(self, target: str, timeout: float, via: str | None = None):
        """``via``: the grpcio target that carries the stream to ``target`` (a TLS bridge), if not ``target`` itself."""
        self.target = target
        self._timeout = timeout
        # Straight to the EPP, never through an HTTP proxy from the environment; retry a restarted EPP soon.
        self._channel = grpc.insecure_channel(via or target, options=[("grpc.enable_http_proxy", 0),
                                                                      ("grpc.max_reconnect_backoff_ms", 2000)])
        # No serializers: the messages are bytes already.
        self._process = self._channel.stream_stream(_METHOD)

    def session(self) -> ExtProcSession:
        return ExtProcSession(self._process, self.target, self._timeout)

    def close(self) -> None:
        self._channel.close()
