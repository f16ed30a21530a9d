import itertools
import socket
import threading
import time
from concurrent import futures

import grpc
import pytest

from igw_sandbox.gateway import extproc

# Golden bytes: ext_proc messages marshalled by the real generated Go code. Made by a throwaway Go module outside
# this repository (go 1.26; go.mod requiring github.com/envoyproxy/go-control-plane/envoy v1.32.4, the version all
# three EPP releases build with, and google.golang.org/protobuf v1.36.4) whose main builds each message with the
# go-control-plane and structpb types, exactly as the EPP handlers do (request headers as raw_value; the v1.0.0
# request-headers answer with set headers in raw_value, clear_route_cache and the {"envoy.lb": {...}} metadata;
# streamed_response body answers; immediate responses with the errutil text as body), marshals it with
# proto.MarshalOptions{Deterministic: true} and prints its name and hex. The unknown-field fixture adds one field
# of every wire type (protowire.Append*) to the message, its CommonResponse, a HeaderValue and a Struct Value
# with ProtoReflect().SetUnknown, and Go reads it back. The names say which release's answer each one is.
GO = {
    "request_headers": (
        "12b5010ab2010a180a0a3a617574686f726974791a0a67772e6578616d706c650a180a053a706174681a0f2f76312f636f6d"
        "706c6574696f6e730a0f0a073a6d6574686f641a04504f53540a0f0a073a736368656d651a04687474700a200a0c636f6e74"
        "656e742d747970651a106170706c69636174696f6e2f6a736f6e0a140a0e636f6e74656e742d6c656e6774681a0233370a17"
        "0a0c782d726571756573742d69641a07306630652d69640a090a07782d656d707479"
    ),
    "request_headers_eos": "12260a220a100a053a706174681a072f6865616c74680a0e0a073a6d6574686f641a034745541801",
    "request_body": "22290a257b226d6f64656c223a22666f6f642d726576696577222c2270726f6d7074223a226869227d1001",
    "response_headers": (
        "1a340a320a0e0a073a7374617475731a033230300a200a0c636f6e74656e742d747970651a106170706c69636174696f6e2f"
        "6a736f6e"
    ),
    "response_body": (
        "2a380a347b2263686f69636573223a5b7b2274657874223a2268656c6c6f227d5d2c226d6f64656c223a22666f6f642d7265"
        "76696577227d1001"
    ),
    "v1_request_headers_answer": (
        "42450a430a08656e766f792e6c6212372a350a330a1e782d676174657761792d64657374696e6174696f6e2d656e64706f69"
        "6e7412111a0f31302e3234342e302e373a383030300a8c010a89011284010a330a310a1e782d676174657761792d64657374"
        "696e6174696f6e2d656e64706f696e741a0f31302e3234342e302e373a383030300a160a140a0e436f6e74656e742d4c656e"
        "6774681a0233370a1a0a180a053a706174681a0f2f76312f636f6d706c6574696f6e730a190a170a0c782d72657175657374"
        "2d69641a07306630652d69642801"
    ),
    "v1_request_headers_answer_two_endpoints": (
        "42550a530a08656e766f792e6c6212472a450a430a1e782d676174657761792d64657374696e6174696f6e2d656e64706f69"
        "6e7412211a1f31302e3234342e302e373a383030302c31302e3234342e302e383a383030300a4b0a4912450a430a410a1e78"
        "2d676174657761792d64657374696e6174696f6e2d656e64706f696e741a1f31302e3234342e302e373a383030302c31302e"
        "3234342e302e383a383030302801"
    ),
    "v1_request_body_answer_1": "1a190a171a151a130a117b226d6f64656c223a22666f6f642d7265",
    "v1_request_body_answer_2": "1a1e0a1c1a1a1a180a1476696577222c2270726f6d7074223a226869227d1001",
    "v1_immediate_404": (
        "3a620a030894031a5b696e666572656e636520676174657761793a20426164436f6e66696775726174696f6e202d20657272"
        "6f722067657474696e6720746172676574206d6f64656c206e616d6520666f72206d6f64656c20666f6f642d726576696577"
    ),
    "v1_immediate_503": (
        "3a640a0308f7031a5d696e666572656e636520676174657761793a2053657276696365556e617661696c61626c65202d2066"
        "61696c656420746f2066696e642063616e64696461746520706f647320666f722073657276696e6720746865207265717565"
        "7374"
    ),
    "v1_response_headers_answer": (
        "125e0a5c125a0a220a200a18782d77656e742d696e746f2d726573702d686561646572731a04747275650a100a0e0a073a73"
        "74617475731a033230300a220a200a0c636f6e74656e742d747970651a106170706c69636174696f6e2f6a736f6e"
    ),
    "v1_response_body_answer": (
        "223e0a3c1a3a1a380a347b2263686f69636573223a5b7b2274657874223a2268656c6c6f227d5d2c226d6f64656c223a2266"
        "6f6f642d726576696577227d1001"
    ),
    "v030_request_headers_answer": "0a040a022801",
    "v030_request_body_answer": (
        "42450a430a08656e766f792e6c6212372a350a330a1e782d676174657761792d64657374696e6174696f6e2d656e64706f69"
        "6e7412111a0f31302e3234342e302e373a383030301a7a0a78124d0a330a310a1e782d676174657761792d64657374696e61"
        "74696f6e2d656e64706f696e741a0f31302e3234342e302e373a383030300a160a140a0e436f6e74656e742d4c656e677468"
        "1a0233371a270a257b226d6f64656c223a22666f6f642d726576696577222c2270726f6d7074223a226869227d"
    ),
    "v030_response_headers_answer": (
        "12280a2612240a220a200a18782d77656e742d696e746f2d726573702d686561646572731a0474727565"
    ),
    "v030_response_body_answer": "22020a00",
    "v030s_request_headers_answer": (
        "42450a430a08656e766f792e6c6212372a350a330a1e782d676174657761792d64657374696e6174696f6e2d656e64706f69"
        "6e7412111a0f31302e3234342e302e373a383030300a530a51124d0a330a310a1e782d676174657761792d64657374696e61"
        "74696f6e2d656e64706f696e741a0f31302e3234342e302e373a383030300a160a140a0e436f6e74656e742d4c656e677468"
        "1a0233372801"
    ),
    "v051_request_headers_answer_no_namespace": (
        "42350a330a1e782d676174657761792d64657374696e6174696f6e2d656e64706f696e7412111a0f31302e3234342e302e37"
        "3a383030300a530a51124d0a330a310a1e782d676174657761792d64657374696e6174696f6e2d656e64706f696e741a0f31"
        "302e3234342e302e373a383030300a160a140a0e436f6e74656e742d4c656e6774681a0233372801"
    ),
    "v030s_request_body_answer": (
        "1a2f0a2d1a2b1a290a257b226d6f64656c223a22666f6f642d726576696577222c2270726f6d7074223a226869227d1001"
    ),
    "other_request_headers_answer": (
        "4297010a94010a08656e766f792e6c621287012a84010a0a0a04626f6f6c120220010a2a0a046c697374122232200a031a01"
        "610a0911000000000000f03f0a0220000a0208000a0232000a022a000a0a0a046e756c6c120208000a130a066e756d626572"
        "12091100000000000004400a0d0a06737472696e6712031a01730a1a0a0673747275637412102a0e0a0c0a05696e6e657212"
        "031a01780a2e0a2c080112240a0e0a0c0a07782d706c61696e1201761206782d64726f70120a782d64726f702d746f6f1a02"
        "1001"
    ),
    "other_immediate": "3a210a0308ad0312140a120a100a0b72657472792d61667465721a01312a0473686564",
    "v030_request_body_answer_unknown_fields": (
        "42770a750a08656e766f792e6c6212692a670a650a1e782d676174657761792d64657374696e6174696f6e2d656e64706f69"
        "6e7412431a0f31302e3234342e302e373a38303030d005ac02d9050807060504030201e2050769676e6f726564eb050a0e69"
        "6e7369646520612067726f7570ec05f505040302011adf010adc01127f0a650a630a1e782d676174657761792d6465737469"
        "6e6174696f6e2d656e64706f696e741a0f31302e3234342e302e373a38303030d005ac02d9050807060504030201e2050769"
        "676e6f726564eb050a0e696e7369646520612067726f7570ec05f505040302010a160a140a0e436f6e74656e742d4c656e67"
        "74681a0233371a270a257b226d6f64656c223a22666f6f642d726576696577222c2270726f6d7074223a226869227dd005ac"
        "02d9050807060504030201e2050769676e6f726564eb050a0e696e7369646520612067726f7570ec05f50504030201d005ac"
        "02d9050807060504030201e2050769676e6f726564eb050a0e696e7369646520612067726f7570ec05f50504030201"
    ),
}


def golden(name):
    return bytes.fromhex(GO[name])


ENDPOINT = "10.244.0.7:8000"
REQUEST_BODY = b'{"model":"food-review","prompt":"hi"}'
RESPONSE_BODY = b'{"choices":[{"text":"hello"}],"model":"food-review"}'
REQUEST_HEADERS = [(":authority", "gw.example"), (":path", "/v1/completions"), (":method", "POST"),
                   (":scheme", "http"), ("content-type", "application/json"), ("content-length", "37"),
                   ("x-request-id", "0f0e-id"), ("x-empty", "")]
# As a client and vLLM write them; the EPPs answer with Go's re-marshalling of them (keys sorted, no spaces).
CLIENT_REQUEST_BODY = b'{"prompt": "hi", "model": "food-review"}'
MODEL_SERVER_RESPONSE_BODY = b'{"model": "food-review", "choices": [{"text": "hello"}]}'
ENDPOINT_METADATA = {"envoy.lb": {"x-gateway-destination-endpoint": ENDPOINT}}


# ---- Wire format against Go's bytes ----

@pytest.mark.parametrize("name, encoded", [
    ("request_headers", lambda: extproc.encode_headers("request", REQUEST_HEADERS, end_of_stream=False)),
    ("request_headers_eos",
     lambda: extproc.encode_headers("request", [(":path", "/health"), (":method", "GET")], end_of_stream=True)),
    ("request_body", lambda: extproc.encode_body("request", REQUEST_BODY, end_of_stream=True)),
    ("response_headers", lambda: extproc.encode_headers(
        "response", [(":status", "200"), ("content-type", "application/json")], end_of_stream=False)),
    ("response_body", lambda: extproc.encode_body("response", RESPONSE_BODY, end_of_stream=True)),
])
def test_requests_are_encoded_byte_for_byte_as_go_marshals_them(name, encoded):
    # One oneof field per message, so Go's field order is the only order.
    assert encoded() == golden(name)


def test_v1_request_headers_answer_decodes_to_the_endpoint_the_echo_and_the_metadata():
    answer = extproc.decode_processing_response(golden("v1_request_headers_answer"))
    assert answer.kind == "request_headers"
    assert answer.immediate is None
    assert answer.common == extproc.CommonResponse(
        clear_route_cache=True,
        header_mutation=extproc.HeaderMutation(set_headers=(
            ("x-gateway-destination-endpoint", ENDPOINT), ("Content-Length", "37"), (":path", "/v1/completions"),
            ("x-request-id", "0f0e-id"))))
    assert answer.dynamic_metadata == ENDPOINT_METADATA


def test_streamed_body_answers_decode_to_chunks_and_end_of_stream():
    first, last = (extproc.decode_processing_response(golden(f"v1_request_body_answer_{n}")) for n in (1, 2))
    assert (first.kind, last.kind) == ("request_body", "request_body")
    assert first.common.body_mutation == extproc.BodyMutation("streamed_response", b'{"model":"food-re', False)
    assert last.common.body_mutation == extproc.BodyMutation("streamed_response", b'view","prompt":"hi"}', True)
    response_body = extproc.decode_processing_response(golden("v1_response_body_answer"))
    assert response_body.kind == "response_body"
    assert response_body.common.body_mutation == extproc.BodyMutation("streamed_response", RESPONSE_BODY, True)


@pytest.mark.parametrize("name, status, body", [
    ("v1_immediate_404", 404,
     b"inference gateway: BadConfiguration - error getting target model name for model food-review"),
    ("v1_immediate_503", 503,
     b"inference gateway: ServiceUnavailable - failed to find candidate pods for serving the request"),
])
def test_immediate_responses_decode_to_status_and_body(name, status, body):
    answer = extproc.decode_processing_response(golden(name))
    assert answer.kind == "immediate_response"
    assert answer.common is None
    assert answer.immediate == extproc.ImmediateResponse(status, extproc.HeaderMutation(), body, "")


def test_v0_3_0_buffered_answers_decode():
    headers = extproc.decode_processing_response(golden("v030_request_headers_answer"))
    assert headers.kind == "request_headers"
    assert headers.common == extproc.CommonResponse(clear_route_cache=True)
    assert headers.dynamic_metadata == {}
    body = extproc.decode_processing_response(golden("v030_request_body_answer"))
    assert body.kind == "request_body"
    assert body.common.header_mutation.set_headers == (("x-gateway-destination-endpoint", ENDPOINT),
                                                       ("Content-Length", "37"))
    assert body.common.body_mutation == extproc.BodyMutation("body", REQUEST_BODY)
    assert body.dynamic_metadata == ENDPOINT_METADATA
    response_headers = extproc.decode_processing_response(golden("v030_response_headers_answer"))
    assert response_headers.kind == "response_headers"
    assert response_headers.common.header_mutation.set_headers == (("x-went-into-resp-headers", "true"),)
    response_body = extproc.decode_processing_response(golden("v030_response_body_answer"))
    assert (response_body.kind, response_body.common) == ("response_body", extproc.CommonResponse())


def test_every_struct_kind_remove_headers_plain_values_and_clear_body_decode():
    answer = extproc.decode_processing_response(golden("other_request_headers_answer"))
    assert answer.common == extproc.CommonResponse(
        status=1,
        header_mutation=extproc.HeaderMutation(set_headers=(("x-plain", "v"),),
                                               remove_headers=("x-drop", "x-drop-too")),
        body_mutation=extproc.BodyMutation("clear_body"))
    assert answer.dynamic_metadata == {"envoy.lb": {
        "null": None, "number": 2.5, "string": "s", "bool": True, "struct": {"inner": "x"},
        "list": ["a", 1.0, False, None, [], {}]}}
    immediate = extproc.decode_processing_response(golden("other_immediate")).immediate
    assert immediate == extproc.ImmediateResponse(
        429, extproc.HeaderMutation(set_headers=(("retry-after", "1"),)), b"", "shed")


def test_unknown_fields_of_every_wire_type_are_skipped_at_every_level():
    with_unknown = golden("v030_request_body_answer_unknown_fields")
    assert len(with_unknown) > len(golden("v030_request_body_answer"))
    assert extproc.decode_processing_response(with_unknown) == \
        extproc.decode_processing_response(golden("v030_request_body_answer"))


def test_a_response_of_no_known_kind_decodes_to_none():
    # b"" is what v0.3.0's server.go puts on the wire when it sends a nil answer.
    assert extproc.decode_processing_response(b"") == extproc.ProcessingResponse(None, None, None, {})
    trailers_answer = bytes([5 << 3 | 2, 0])
    assert extproc.decode_processing_response(trailers_answer).kind is None


@pytest.mark.parametrize("data", [
    golden("v1_request_body_answer_1")[:-1],
    bytes.fromhex("0880"),  # varint cut short
    bytes.fromhex("08" + "ff" * 10 + "01"),  # varint longer than 10 bytes
    bytes.fromhex("5b"),  # group 11 never ended
    bytes.fromhex("5b64"),  # group 11 ended by 12
    bytes.fromhex("5c"),  # group 11 ended, never started
    bytes.fromhex("5e"),  # wire type 6
])
def test_malformed_bytes_raise_value_error(data):
    with pytest.raises(ValueError):
        extproc.decode_processing_response(data)


# ---- The client against in-process ext_proc servers that replay each release's answers ----

# ProcessingRequest's oneof field numbers, read from the first byte of what the gateway sends.
SENT_KINDS = {2: "request_headers", 3: "response_headers", 4: "request_body", 5: "response_body"}

V1_0_0 = {"request_body": ["v1_request_headers_answer", "v1_request_body_answer_1", "v1_request_body_answer_2"],
          "response_headers": ["v1_response_headers_answer"], "response_body": ["v1_response_body_answer"]}
V0_3_0_STREAMING = {"request_body": ["v030s_request_headers_answer", "v030s_request_body_answer"],
                    "response_headers": ["v030_response_headers_answer"], "response_body": ["v1_response_body_answer"]}
V0_3_0_BUFFERED = {"request_headers": ["v030_request_headers_answer"], "request_body": ["v030_request_body_answer"],
                   "response_headers": ["v030_response_headers_answer"],
                   "response_body": ["v030_response_body_answer"]}


class FakeEpp:
    """Answers each message the gateway sends with the answers given for its kind (golden names, or bytes),
    records what it got, and notes when the gateway half-closes the stream."""

    def __init__(self, answers):
        self.answers = answers
        self.received = []
        self.half_closed = threading.Event()

    def process(self, requests, context):
        for message in requests:
            self.received.append(message)
            for name in self.answers.get(SENT_KINDS[message[0] >> 3], ()):
                yield golden(name) if name in GO else name
        self.half_closed.set()


@pytest.fixture
def client_for():
    """Starts an in-process ext_proc server with the given stream handler; returns a client of it."""
    started = []

    def connect(process, timeout=5.0):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        # No (de)serializers: the handler gets and yields bytes.
        handler = grpc.stream_stream_rpc_method_handler(process)
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "envoy.service.ext_proc.v3.ExternalProcessor", {"Process": handler})])
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        client = extproc.ExtProcClient(f"127.0.0.1:{port}", timeout)
        started.append((server, client))
        return client

    yield connect
    for server, client in started:
        client.close()
        server.stop(grace=None)


def _exchange(client):
    with client.session() as session:
        decision = session.request([("Content-Type", "application/json")], CLIENT_REQUEST_BODY)
        result = session.response(200, [("Content-Type", "application/json")], MODEL_SERVER_RESPONSE_BODY)
    return decision, result


# Header names in lower case, the status as ":status", each body whole in one message.
SENT_AS_ENVOY_SENDS = [
    extproc.encode_headers("request", [("content-type", "application/json")], end_of_stream=False),
    extproc.encode_body("request", CLIENT_REQUEST_BODY, end_of_stream=True),
    extproc.encode_headers("response", [(":status", "200"), ("content-type", "application/json")],
                           end_of_stream=False),
    extproc.encode_body("response", MODEL_SERVER_RESPONSE_BODY, end_of_stream=True)]


def test_v1_0_0_answers_the_request_headers_after_the_body_and_streams_the_body_back(client_for):
    epp = FakeEpp(V1_0_0)
    decision, result = _exchange(client_for(epp.process))
    assert decision == extproc.RequestDecision(
        endpoints=(ENDPOINT,),
        set_headers=(("x-gateway-destination-endpoint", ENDPOINT), ("Content-Length", "37"),
                     (":path", "/v1/completions"), ("x-request-id", "0f0e-id")),
        body=REQUEST_BODY)
    assert decision.endpoint == ENDPOINT
    assert result == extproc.ResponseDecision(RESPONSE_BODY, set_headers=(
        ("x-went-into-resp-headers", "true"), (":status", "200"), ("content-type", "application/json")))
    assert epp.received == SENT_AS_ENVOY_SENDS
    assert epp.half_closed.wait(5)


def test_v0_3_0_streaming_server_answers_like_v1_0_0_without_the_echo(client_for):
    epp = FakeEpp(V0_3_0_STREAMING)
    decision, result = _exchange(client_for(epp.process))
    assert decision == extproc.RequestDecision(
        endpoints=(ENDPOINT,), set_headers=(("x-gateway-destination-endpoint", ENDPOINT), ("Content-Length", "37")),
        body=REQUEST_BODY)
    assert result == extproc.ResponseDecision(RESPONSE_BODY, set_headers=(("x-went-into-resp-headers", "true"),))
    assert epp.received == SENT_AS_ENVOY_SENDS


def test_v0_3_0_buffered_server_names_the_endpoint_in_the_body_answer_and_leaves_the_response_body(client_for):
    epp = FakeEpp(V0_3_0_BUFFERED)
    decision, result = _exchange(client_for(epp.process))
    assert decision == extproc.RequestDecision(
        endpoints=(ENDPOINT,), set_headers=(("x-gateway-destination-endpoint", ENDPOINT), ("Content-Length", "37")),
        body=REQUEST_BODY)
    assert result == extproc.ResponseDecision(MODEL_SERVER_RESPONSE_BODY,
                                              set_headers=(("x-went-into-resp-headers", "true"),))
    assert epp.received == SENT_AS_ENVOY_SENDS


def test_a_spurious_answer_to_the_response_lets_it_through_as_envoy_does(client_for):
    # v0.3.0's server.go answers a response body that is not JSON with an empty message.
    epp = FakeEpp({**V0_3_0_BUFFERED, "response_body": [b""]})
    with client_for(epp.process).session() as session:
        session.request([], REQUEST_BODY)
        result = session.response(502, [("content-type", "text/plain")], b"upstream broke")
    assert result == extproc.ResponseDecision(b"upstream broke", set_headers=(("x-went-into-resp-headers", "true"),))
    assert epp.received[2] == extproc.encode_headers(
        "response", [(":status", "502"), ("content-type", "text/plain")], end_of_stream=False)


def test_mutations_of_all_answers_are_gathered_in_order(client_for):
    epp = FakeEpp({"request_headers": ["other_request_headers_answer"], "request_body": ["v030_request_body_answer"]})
    with client_for(epp.process).session() as session:
        decision = session.request([], CLIENT_REQUEST_BODY)
    assert decision == extproc.RequestDecision(
        endpoints=(ENDPOINT,),
        set_headers=(("x-plain", "v"), ("x-gateway-destination-endpoint", ENDPOINT), ("Content-Length", "37")),
        remove_headers=("x-drop", "x-drop-too"),
        body=REQUEST_BODY)


def test_several_endpoints_are_kept_in_order_the_first_primary(client_for):
    epp = FakeEpp({"request_body": ["v1_request_headers_answer_two_endpoints", "v1_request_body_answer_1",
                                    "v1_request_body_answer_2"]})
    with client_for(epp.process).session() as session:
        decision = session.request([], REQUEST_BODY)
    assert decision.endpoints == ("10.244.0.7:8000", "10.244.0.8:8000")
    assert decision.endpoint == "10.244.0.7:8000"


def test_the_endpoint_is_taken_from_the_header_when_the_metadata_lacks_it(client_for):
    epp = FakeEpp({"request_body": ["v051_request_headers_answer_no_namespace", "v030s_request_body_answer"]})
    with client_for(epp.process).session() as session:
        assert session.request([], REQUEST_BODY).endpoints == (ENDPOINT,)


def test_a_request_without_body_ends_the_stream_with_its_headers(client_for):
    epp = FakeEpp({"request_headers": ["v030s_request_headers_answer"],
                   "response_headers": ["v030_response_headers_answer"]})
    with client_for(epp.process).session() as session:
        decision = session.request([(":method", "GET"), (":path", "/v1/models")], b"")
        result = session.response(204, [], b"")
    assert decision.endpoints == (ENDPOINT,)
    assert decision.body is None
    assert result.body == b""
    assert epp.received == [
        extproc.encode_headers("request", [(":method", "GET"), (":path", "/v1/models")], end_of_stream=True),
        extproc.encode_headers("response", [(":status", "204")], end_of_stream=True)]


def test_an_immediate_response_is_returned_and_the_stream_closed(client_for):
    epp = FakeEpp({"request_body": ["v1_immediate_503"]})
    with client_for(epp.process).session() as session:
        decision = session.request([], REQUEST_BODY)
        assert epp.half_closed.wait(5)
    assert decision.endpoints == ()
    assert decision.endpoint is None
    assert decision.immediate == extproc.ImmediateResponse(
        503, extproc.HeaderMutation(),
        b"inference gateway: ServiceUnavailable - failed to find candidate pods for serving the request", "")


def test_leaving_the_session_early_half_closes_the_stream(client_for):
    epp = FakeEpp(V1_0_0)
    with client_for(epp.process).session() as session:
        session.request([], REQUEST_BODY)
    assert epp.half_closed.wait(5)
    with pytest.raises(extproc.ExtProcError, match="already closed"):
        session.response(200, [], RESPONSE_BODY)


def test_sessions_on_one_client_from_many_threads_get_their_own_answers(client_for):
    two = {"request_body": ["v1_request_headers_answer_two_endpoints", "v1_request_body_answer_1",
                            "v1_request_body_answer_2"]}

    def process(requests, context):
        first = next(requests, b"")
        yield from FakeEpp(two if b"/two" in first else V1_0_0).process(itertools.chain([first], requests), context)

    client = client_for(process)

    def ask(path):
        with client.session() as session:
            return session.request([(":path", path)], REQUEST_BODY).endpoints

    paths = ["/one", "/two"] * 16
    with futures.ThreadPoolExecutor(max_workers=8) as pool:
        endpoints = list(pool.map(ask, paths))
    assert endpoints == [(ENDPOINT,) if path == "/one" else ("10.244.0.7:8000", "10.244.0.8:8000")
                         for path in paths]


# ---- Failures: one exception, naming the EPP's address ----

def _failure(client, request_body=REQUEST_BODY):
    with pytest.raises(extproc.ExtProcError) as failure:
        with client.session() as session:
            session.request([], request_body)
    assert f"EPP {client.target}" in str(failure.value)
    return str(failure.value)


def test_a_grpc_error_names_the_status_and_details(client_for):
    def process(requests, context):
        next(requests, None)
        context.abort(grpc.StatusCode.UNAVAILABLE, "epp is draining")
        yield  # a generator, as the handler must be

    assert "gRPC status UNAVAILABLE: epp is draining" in _failure(client_for(process))


def test_a_stream_that_ends_before_the_answers_fails(client_for):
    def process(requests, context):
        next(requests, None)
        yield golden("v030_request_headers_answer")  # and no body answer

    assert "stream ended before the answer to the request body" in _failure(client_for(process))


def test_a_body_less_request_answered_without_endpoint_fails(client_for):
    # v0.3.0's server.go names no endpoint until it has seen a body.
    epp = FakeEpp(V0_3_0_BUFFERED)
    assert "without a destination endpoint" in _failure(client_for(epp.process), request_body=b"")


def test_an_answer_of_the_wrong_phase_fails(client_for):
    epp = FakeEpp({"request_headers": ["v030_response_headers_answer"]})
    assert "answered the request with response_headers" in _failure(client_for(epp.process))


def test_an_undecodable_answer_fails(client_for):
    epp = FakeEpp({"request_headers": [golden("v1_request_body_answer_1")[:-1]]})
    assert "undecodable answer to the request headers: truncated field" in _failure(client_for(epp.process))


def test_an_epp_that_does_not_answer_times_out_and_the_stream_is_cancelled(client_for):
    ended = threading.Event()

    def process(requests, context):
        context.add_callback(ended.set)
        yield from FakeEpp({}).process(requests, context)

    started = time.monotonic()
    assert "no answer to the request headers within 0.3s" in _failure(client_for(process, timeout=0.3))
    assert time.monotonic() - started < 3
    assert ended.wait(5)


def test_an_unreachable_epp_fails_with_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{probe.getsockname()[1]}"
    client = extproc.ExtProcClient(target, 5.0)
    try:
        assert "gRPC status UNAVAILABLE" in _failure(client)
    finally:
        client.close()
