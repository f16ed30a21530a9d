package main

// One HTTP request's exchange with an endpoint picker over Envoy's external processing protocol, as GKE's
// load balancer holds it through its service extension.
//
// How the EPP releases answer (read from pkg/epp/handlers/ of each; all build with go-control-plane v1.32.4).
// The endpoint is always in dynamic_metadata {"envoy.lb": {"x-gateway-destination-endpoint": "ip:port"}} and
// in a set header x-gateway-destination-endpoint (v0.3.0 and v0.5.1 take both names from flags, with these
// defaults).
//
//	release, server           | request_headers answered        | endpoint, header mutations in      | body answers
//	--------------------------+---------------------------------+------------------------------------+--------------
//	v0.3.0 server.go          | at once, clear_route_cache      | the request_body answer: endpoint, | one whole-body
//	(cmd/epp's default:       | only, no endpoint (so a         | Content-Length; body_mutation.body | mutation; each
//	USE_STREAMING unset)      | body-less request gets none)    | (buffered: one body message)       | response_body
//	                          |                                 |                                    | gets an empty
//	                          |                                 |                                    | answer
//	v0.3.0 streamingserver.go | after the body's end_of_stream  | the request_headers answer:        | one streamed_
//	(USE_STREAMING=true, as   | (at once, to a random pod, if   | endpoint, Content-Length           | response, the
//	the v0.3.0 chart sets it) | request_headers end the stream) |                                    | whole body
//	v0.5.1, v1.0.0 server.go  | as v0.3.0 streamingserver.go    | the request_headers answer:        | streamed_
//	(the only server)         |                                 | endpoint, Content-Length, every    | response
//	                          |                                 | request header echoed; v1.0.0 adds | chunks of <=
//	                          |                                 | x-request-id when absent, and may  | 62000 bytes,
//	                          |                                 | name several endpoints, comma-     | the last
//	                          |                                 | separated                          | end_of_stream
//
// Responses: every release answers response_headers at once (set header x-went-into-resp-headers: true; v0.5.1
// and v1.0.0 also echo every response header). The streaming servers re-marshal a JSON response body and
// answer it after its end_of_stream (an event stream passes through chunk by chunk); v0.3.0's server.go leaves
// it as is. Errors come as an immediate_response to the request (429, 500, 503, 400, 404; with the error text as
// body from v0.5.1 on), other failures as a gRPC error status. No release answers a response with an
// immediate_response.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	endpointMetadataNamespace = "envoy.lb"
	endpointKey               = "x-gateway-destination-endpoint"
)

// header is one (name, value) pair in the order it was sent or set.
type header struct{ name, value string }

// requestDecision is what the EPP decided for a request: an immediate answer, or where and what to send.
type requestDecision struct {
	endpoints     []string // "ip:port", the primary first
	setHeaders    []header
	removeHeaders []string
	body          []byte // nil: the original body
	immediate     *extprocv3.ImmediateResponse
}

// responseDecision is what the client gets of the model server's response.
type responseDecision struct {
	body          []byte
	setHeaders    []header
	removeHeaders []string
}

type received struct {
	answer *extprocv3.ProcessingResponse
	err    error
}

// session is one ext_proc stream; use it from one goroutine and always close it.
type session struct {
	target  string
	timeout time.Duration
	call    extprocv3.ExternalProcessor_ProcessClient
	cancel  context.CancelFunc
	answers chan received
	done    chan struct{} // closed once the reader has seen the stream end
	open    bool
	// timedOut: the EPP gave no answer within the timeout (rather than an error or the end of the stream).
	timedOut bool
}

func openSession(client extprocv3.ExternalProcessorClient, target string, timeout time.Duration) (*session, error) {
	ctx, cancel := context.WithCancel(context.Background())
	call, err := client.Process(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ext_proc stream to EPP %s: %s", target, describe(err))
	}
	s := &session{target: target, timeout: timeout, call: call, cancel: cancel,
		answers: make(chan received, 8), done: make(chan struct{}), open: true}
	go s.read(ctx)
	return s, nil
}

// read hands every answer over until the stream ends; a grpc Recv has no timeout of its own.
func (s *session) read(ctx context.Context) {
	defer close(s.done)
	for {
		answer, err := s.call.Recv()
		select {
		case s.answers <- received{answer, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func describe(err error) string {
	if st, ok := status.FromError(err); ok {
		return fmt.Sprintf("gRPC status %s: %s", st.Code(), st.Message())
	}
	return err.Error()
}

func (s *session) fail(reason string) error {
	s.open = false
	s.cancel()
	return fmt.Errorf("ext_proc stream to EPP %s: %s", s.target, reason)
}

func (s *session) receive(awaited string) (*extprocv3.ProcessingResponse, error) {
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	select {
	case r := <-s.answers:
		if errors.Is(r.err, io.EOF) {
			return nil, s.fail("stream ended before the answer to the " + awaited)
		}
		if r.err != nil {
			return nil, s.fail(describe(r.err))
		}
		return r.answer, nil
	case <-timer.C:
		s.timedOut = true
		return nil, s.fail(fmt.Sprintf("no answer to the %s within %s", awaited, s.timeout))
	}
}

func headerMap(headers []header) *corev3.HeaderMap {
	values := make([]*corev3.HeaderValue, 0, len(headers))
	for _, h := range headers {
		// Envoy hands names over in lower case (the EPPs match some exactly) and values as raw_value.
		values = append(values, &corev3.HeaderValue{Key: strings.ToLower(h.name), RawValue: []byte(h.value)})
	}
	return &corev3.HeaderMap{Headers: values}
}

func processingRequest(phase string, headers []header, body []byte) (first, second *extprocv3.ProcessingRequest) {
	hasBody := len(body) > 0
	httpHeaders := &extprocv3.HttpHeaders{Headers: headerMap(headers), EndOfStream: !hasBody}
	httpBody := &extprocv3.HttpBody{Body: body, EndOfStream: true}
	if phase == "request" {
		first = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: httpHeaders}}
		second = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: httpBody}}
	} else {
		first = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: httpHeaders}}
		second = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: httpBody}}
	}
	if !hasBody {
		second = nil
	}
	return first, second
}

// kind names an answer's oneof as the phase it answers ("request_headers", ...), "" for others.
func kind(answer *extprocv3.ProcessingResponse) string {
	switch answer.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingResponse_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingResponse_ResponseBody:
		return "response_body"
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return "immediate_response"
	}
	return ""
}

func common(answer *extprocv3.ProcessingResponse) *extprocv3.CommonResponse {
	switch r := answer.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return r.RequestHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return r.ResponseHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_RequestBody:
		return r.RequestBody.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseBody:
		return r.ResponseBody.GetResponse()
	}
	return nil
}

func isLastBodyAnswer(mutation *extprocv3.BodyMutation) bool {
	streamed, ok := mutation.GetMutation().(*extprocv3.BodyMutation_StreamedResponse)
	return !ok || streamed.StreamedResponse.GetEndOfStream()
}

func mutatedBody(body []byte, mutation *extprocv3.BodyMutation) []byte {
	switch m := mutation.GetMutation().(type) {
	case *extprocv3.BodyMutation_StreamedResponse:
		return append(append([]byte{}, body...), m.StreamedResponse.GetBody()...)
	case *extprocv3.BodyMutation_Body:
		return append([]byte{}, m.Body...)
	case *extprocv3.BodyMutation_ClearBody:
		return []byte{}
	}
	return body
}

// exchange sends one phase's headers, then its whole body in one message (as Envoy sends it in buffered mode,
// which v0.3.0's server.go needs, and a valid full-duplex stream for the others), and returns the answers up
// to the headers answer and the last body answer, whatever their order; or up to an answer of another kind,
// which ends the list.
func (s *session) exchange(phase string, headers []header, body []byte) ([]*extprocv3.ProcessingResponse, error) {
	if !s.open {
		return nil, fmt.Errorf("ext_proc stream to EPP %s: already closed", s.target)
	}
	first, second := processingRequest(phase, headers, body)
	for _, message := range []*extprocv3.ProcessingRequest{first, second} {
		if message == nil {
			continue
		}
		if err := s.call.Send(message); err != nil && !errors.Is(err, io.EOF) {
			return nil, s.fail("sending the " + phase + ": " + describe(err))
		}
	}
	var answers []*extprocv3.ProcessingResponse
	headersAnswered, bodyAnswered := false, second == nil
	for !(headersAnswered && bodyAnswered) {
		awaited := phase + " headers"
		if headersAnswered {
			awaited = phase + " body"
		}
		answer, err := s.receive(awaited)
		if err != nil {
			return nil, err
		}
		answers = append(answers, answer)
		switch kind(answer) {
		case phase + "_headers":
			headersAnswered = true
		case phase + "_body":
			bodyAnswered = isLastBodyAnswer(common(answer).GetBodyMutation())
		default:
			return answers, nil
		}
	}
	return answers, nil
}

func mutations(answers []*extprocv3.ProcessingResponse) (set []header, remove []string, body []byte) {
	for _, answer := range answers {
		answerSet, answerRemove := mutationOf(common(answer).GetHeaderMutation())
		set, remove = append(set, answerSet...), append(remove, answerRemove...)
		body = mutatedBody(body, common(answer).GetBodyMutation())
	}
	return set, remove, body
}

func mutationOf(m *extprocv3.HeaderMutation) ([]header, []string) {
	var set []header
	for _, option := range m.GetSetHeaders() {
		h := option.GetHeader()
		value := h.GetValue()
		if h.GetRawValue() != nil {
			value = string(h.GetRawValue())
		}
		set = append(set, header{h.GetKey(), value})
	}
	return set, m.GetRemoveHeaders()
}

// endpoints reads the destination from the dynamic metadata, as GKE does, else from the header mutation; a
// list is comma-separated.
func endpoints(answers []*extprocv3.ProcessingResponse, set []header) []string {
	value, found := "", false
	for _, answer := range answers {
		field := answer.GetDynamicMetadata().GetFields()[endpointMetadataNamespace].GetStructValue().GetFields()[endpointKey]
		if _, isText := field.GetKind().(*structpb.Value_StringValue); isText {
			value, found = field.GetStringValue(), true
		}
	}
	for i := len(set) - 1; i >= 0 && !found; i-- {
		if strings.EqualFold(set[i].name, endpointKey) {
			value, found = set[i].value, true
		}
	}
	var list []string
	for _, endpoint := range strings.Split(value, ",") {
		if endpoint = strings.TrimSpace(endpoint); endpoint != "" {
			list = append(list, endpoint)
		}
	}
	return list
}

// request asks the EPP about a request; headers start with the pseudo-headers Envoy sends.
func (s *session) request(headers []header, body []byte) (*requestDecision, error) {
	answers, err := s.exchange("request", headers, body)
	if err != nil {
		return nil, err
	}
	last := answers[len(answers)-1]
	switch kind(last) {
	case "immediate_response":
		s.close()
		return &requestDecision{immediate: last.GetImmediateResponse()}, nil
	case "request_headers", "request_body":
	default:
		return nil, s.fail("answered the request with " + orUnknown(kind(last)))
	}
	set, remove, newBody := mutations(answers)
	list := endpoints(answers, set)
	if len(list) == 0 {
		return nil, s.fail("answered the request without a destination endpoint")
	}
	return &requestDecision{endpoints: list, setHeaders: set, removeHeaders: remove, body: newBody}, nil
}

func orUnknown(name string) string {
	if name == "" {
		return "an unknown message"
	}
	return name
}

// response passes the model server's response through the EPP, then closes the stream.
//
// The status goes as ":status", as Envoy sends it. Every release looks for "status" instead (to count
// model-server errors in a metric), so with Envoy, and here, that branch never runs.
func (s *session) response(code int, headers []header, body []byte) (*responseDecision, error) {
	defer s.close()
	answers, err := s.exchange("response", append([]header{{":status", fmt.Sprint(code)}}, headers...), body)
	if err != nil {
		return nil, err
	}
	// Any other answer (v0.3.0's server.go sends an empty message for a body that is not JSON) is one Envoy
	// calls spurious: it closes the stream and lets the response through as it stands.
	var processed []*extprocv3.ProcessingResponse
	for _, answer := range answers {
		if k := kind(answer); k == "response_headers" || k == "response_body" {
			processed = append(processed, answer)
		}
	}
	set, remove, newBody := mutations(processed)
	if newBody == nil {
		newBody = body
	}
	return &responseDecision{body: newBody, setHeaders: set, removeHeaders: remove}, nil
}

// close half-closes the stream and waits, at most the timeout, for the EPP to end it; then cancels it.
func (s *session) close() {
	if !s.open {
		s.cancel()
		return
	}
	s.open = false
	_ = s.call.CloseSend()
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	for {
		select {
		case r := <-s.answers:
			if r.err == nil {
				continue
			}
		case <-timer.C:
		}
		break
	}
	s.cancel()
}
