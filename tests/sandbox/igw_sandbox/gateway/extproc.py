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
"""

import struct
from collections.abc import Sequence
from dataclasses import dataclass

_VARINT, _I64, _LEN, _START_GROUP, _END_GROUP, _I32 = range(6)
# ProcessingRequest's oneof fields.
_HEADERS_FIELD = {"request": 2, "response": 3}
_BODY_FIELD = {"request": 4, "response": 5}
# ProcessingResponse's oneof fields that this client handles; trailers (5, 6) and unknown ones are left as None.
_RESPONSE_KINDS = {1: "request_headers", 2: "response_headers", 3: "request_body", 4: "response_body",
                   7: "immediate_response"}


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
        inner_number, wire_type, _, position = _read_field(data, position)
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
