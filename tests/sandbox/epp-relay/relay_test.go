package main

// The relay against fake endpoint pickers that answer as each GIE release does (see exchange.go); the real
// EPPs are in the path of the sandbox's integration tests.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// fakeEPP runs answer for every stream on a loopback gRPC server.
type fakeEPP struct {
	extprocv3.UnimplementedExternalProcessorServer
	answer func(stream extprocv3.ExternalProcessor_ProcessServer) error
}

func (f *fakeEPP) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	return f.answer(stream)
}

func startEPP(t *testing.T, answer func(extprocv3.ExternalProcessor_ProcessServer) error) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(server, &fakeEPP{answer: answer})
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

// upstream is a model server that answers with what it received.
type seen struct {
	Path    string            `json:"path"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}

func startUpstream(t *testing.T) string {
	t.Helper()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		headers := map[string]string{}
		for name := range r.Header {
			headers[strings.ToLower(name)] = r.Header.Get(name)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Model-Server", "yes")
		_ = json.NewEncoder(w).Encode(seen{r.URL.RequestURI(), string(body), headers})
	}))
	t.Cleanup(server.Close)
	return strings.TrimPrefix(server.URL, "http://")
}

func startRelay(t *testing.T, timeout time.Duration) *httptest.Server {
	t.Helper()
	r := newRelay(timeout)
	r.credentials = insecure.NewCredentials()
	server := httptest.NewServer(r)
	t.Cleanup(server.Close)
	return server
}

func post(t *testing.T, relayURL, epp, body string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, relayURL+"/v1/completions?x=1", strings.NewReader(body))
	req.Host = "gateway.example"
	req.Header.Set(headerEPP, epp)
	req.Header.Set("Content-Type", "application/json")
	for name, value := range headers {
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp, string(answer)
}

func setHeaders(pairs ...string) *extprocv3.HeaderMutation {
	m := &extprocv3.HeaderMutation{}
	for i := 0; i < len(pairs); i += 2 {
		m.SetHeaders = append(m.SetHeaders, &corev3.HeaderValueOption{
			Header: &corev3.HeaderValue{Key: pairs[i], RawValue: []byte(pairs[i+1])}})
	}
	return m
}

func endpointMetadata(endpoint string) *structpb.Struct {
	metadata, _ := structpb.NewStruct(map[string]any{endpointMetadataNamespace: map[string]any{endpointKey: endpoint}})
	return metadata
}

func headersAnswer(request bool, mutation *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	answer := &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: mutation}}
	if request {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: answer}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: answer}}
}

func streamedBody(request bool, chunk string, last bool) *extprocv3.ProcessingResponse {
	answer := &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
		Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{
			Body: []byte(chunk), EndOfStream: last}}}}}
	if request {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: answer}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: answer}}
}

// headerValue finds a header of a phase's headers message.
func headerValue(h *extprocv3.HttpHeaders, name string) string {
	for _, value := range h.GetHeaders().GetHeaders() {
		if value.GetKey() == name {
			return string(value.GetRawValue())
		}
	}
	return ""
}

// v1Style answers as v0.5.1 and v1.0.0 do: the request headers after the body's end, with the endpoint and a
// header, the body streamed back in two chunks; the response headers at once, the response body re-sent.
func v1Style(endpoint string, got chan<- *extprocv3.HttpHeaders) func(extprocv3.ExternalProcessor_ProcessServer) error {
	return func(stream extprocv3.ExternalProcessor_ProcessServer) error {
		var requestBody []byte
		for {
			message, err := stream.Recv()
			if err != nil {
				return nil
			}
			switch m := message.GetRequest().(type) {
			case *extprocv3.ProcessingRequest_RequestHeaders:
				if got != nil {
					got <- m.RequestHeaders
				}
			case *extprocv3.ProcessingRequest_RequestBody:
				requestBody = append(requestBody, m.RequestBody.GetBody()...)
				if !m.RequestBody.GetEndOfStream() {
					continue
				}
				answer := headersAnswer(true, setHeaders(endpointKey, endpoint, "x-picked", "yes"))
				answer.DynamicMetadata = endpointMetadata(endpoint)
				rewritten := strings.Replace(string(requestBody), "food-review", "food-review-1", 1)
				for _, a := range []*extprocv3.ProcessingResponse{answer,
					streamedBody(true, rewritten[:5], false), streamedBody(true, rewritten[5:], true)} {
					if err := stream.Send(a); err != nil {
						return err
					}
				}
			case *extprocv3.ProcessingRequest_ResponseHeaders:
				_ = stream.Send(headersAnswer(false, setHeaders("x-went-into-resp-headers", "true",
					"x-status-seen", headerValue(m.ResponseHeaders, ":status"))))
			case *extprocv3.ProcessingRequest_ResponseBody:
				_ = stream.Send(streamedBody(false, "re-marshalled:"+string(m.ResponseBody.GetBody()), true))
			}
		}
	}
}

func TestAV1EPPNamesThePodRewritesTheBodyAndProcessesTheResponse(t *testing.T) {
	upstream := startUpstream(t)
	got := make(chan *extprocv3.HttpHeaders, 1)
	epp := startEPP(t, v1Style(upstream, got))
	resp, body := post(t, startRelay(t, 5*time.Second).URL, epp, `{"model":"food-review"}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get(headerOutcome) != outcomeForwarded {
		t.Fatalf("status %d outcome %q body %s", resp.StatusCode, resp.Header.Get(headerOutcome), body)
	}
	if resp.Header.Get(headerEndpoint) != upstream || resp.Header.Get("X-Went-Into-Resp-Headers") != "true" ||
		resp.Header.Get("X-Status-Seen") != "200" {
		t.Fatalf("headers %v", resp.Header)
	}
	var upstreamSaw seen
	if err := json.Unmarshal([]byte(strings.TrimPrefix(body, "re-marshalled:")), &upstreamSaw); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if upstreamSaw.Body != `{"model":"food-review-1"}` || upstreamSaw.Headers["x-picked"] != "yes" ||
		upstreamSaw.Path != "/v1/completions?x=1" {
		t.Fatalf("the model server saw %+v", upstreamSaw)
	}
	sent := <-got
	for name, want := range map[string]string{":method": "POST", ":path": "/v1/completions?x=1", ":scheme": "http",
		":authority": "gateway.example", "content-type": "application/json"} {
		if value := headerValue(sent, name); value != want {
			t.Errorf("the EPP got %s=%q, want %q", name, value, want)
		}
	}
	if headerValue(sent, "x-request-id") == "" || headerValue(sent, strings.ToLower(headerEPP)) != "" {
		t.Errorf("the EPP got x-request-id %q and the relay's own header %q", headerValue(sent, "x-request-id"),
			headerValue(sent, strings.ToLower(headerEPP)))
	}
}

// bufferedStyle answers as v0.3.0's server.go does: the request headers at once without an endpoint, then the
// endpoint and a whole-body mutation in the body's answer; an empty message for each response phase.
func bufferedStyle(endpoint string) func(extprocv3.ExternalProcessor_ProcessServer) error {
	return func(stream extprocv3.ExternalProcessor_ProcessServer) error {
		for {
			message, err := stream.Recv()
			if err != nil {
				return nil
			}
			var answer *extprocv3.ProcessingResponse
			switch message.GetRequest().(type) {
			case *extprocv3.ProcessingRequest_RequestHeaders:
				answer = headersAnswer(true, nil)
			case *extprocv3.ProcessingRequest_RequestBody:
				answer = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
					RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
						HeaderMutation: setHeaders(endpointKey, endpoint),
						BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(`{"model":"base"}`)}}}}}}
			default:
				answer = &extprocv3.ProcessingResponse{}
			}
			if err := stream.Send(answer); err != nil {
				return err
			}
		}
	}
}

func TestTheV030BufferedServerNamesTheEndpointInTheBodyAnswerAndASpuriousResponseAnswerLetsItThrough(t *testing.T) {
	upstream := startUpstream(t)
	resp, body := post(t, startRelay(t, 5*time.Second).URL, startEPP(t, bufferedStyle(upstream)),
		`{"model":"food-review"}`, nil)
	var upstreamSaw seen
	if err := json.Unmarshal([]byte(body), &upstreamSaw); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %v: %s", resp.StatusCode, err, body)
	}
	if upstreamSaw.Body != `{"model":"base"}` || resp.Header.Get("X-Model-Server") != "yes" ||
		resp.Header.Get(headerWarning) != "" {
		t.Fatalf("the model server saw %+v; the client got %v", upstreamSaw, resp.Header)
	}
}

func immediate(code typev3.StatusCode, body string) func(extprocv3.ExternalProcessor_ProcessServer) error {
	return func(stream extprocv3.ExternalProcessor_ProcessServer) error {
		if _, err := stream.Recv(); err != nil {
			return nil
		}
		return stream.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: code}, Body: []byte(body),
				Headers: setHeaders("content-type", "text/plain")}}})
	}
}

func TestTheEPPsOwnAnswerReachesTheClient(t *testing.T) {
	resp, body := post(t, startRelay(t, 5*time.Second).URL, startEPP(t, immediate(typev3.StatusCode_NotFound, "no model")),
		`{"model":"unknown"}`, nil)
	if resp.StatusCode != 404 || body != "no model" || resp.Header.Get(headerOutcome) != outcomeImmediate ||
		resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("status %d outcome %q body %q", resp.StatusCode, resp.Header.Get(headerOutcome), body)
	}
}

func expectEPPFailure(t *testing.T, epp string, timeout time.Duration, want string) {
	t.Helper()
	resp, body := post(t, startRelay(t, timeout).URL, epp, `{"model":"food-review"}`, nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(headerOutcome) != outcomeEPPFailed ||
		!strings.Contains(body, want) {
		t.Fatalf("status %d outcome %q body %q, want a failure saying %q", resp.StatusCode,
			resp.Header.Get(headerOutcome), body, want)
	}
}

func TestAnUnreachableEPPFailsWithUnavailable(t *testing.T) {
	listener, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := listener.Addr().String()
	listener.Close()
	expectEPPFailure(t, closed, 5*time.Second, "Unavailable")
}

func TestAnEPPThatDoesNotAnswerTimesOut(t *testing.T) {
	epp := startEPP(t, func(stream extprocv3.ExternalProcessor_ProcessServer) error {
		<-stream.Context().Done()
		return nil
	})
	expectEPPFailure(t, epp, 300*time.Millisecond, "no answer to the request headers within 300ms")
}

// countingListener counts the connections a server accepted.
type countingListener struct {
	net.Listener
	mu       sync.Mutex
	accepted int
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.accepted++
		l.mu.Unlock()
	}
	return conn, err
}

func (l *countingListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted
}

// startCountingEPP is startEPP with a count of the connections the EPP accepted.
func startCountingEPP(t *testing.T, answer func(extprocv3.ExternalProcessor_ProcessServer) error) *countingListener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listener := &countingListener{Listener: inner}
	server := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(server, &fakeEPP{answer: answer})
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener
}

func TestAConnectionOnWhichTheEPPGaveNoAnswerIsNotReused(t *testing.T) {
	listener := startCountingEPP(t, func(stream extprocv3.ExternalProcessor_ProcessServer) error {
		<-stream.Context().Done()
		return nil
	})
	relayURL := startRelay(t, 300*time.Millisecond).URL
	for attempt := 1; attempt <= 2; attempt++ {
		resp, body := post(t, relayURL, listener.Addr().String(), `{"model":"food-review"}`, nil)
		if resp.Header.Get(headerOutcome) != outcomeEPPFailed || !strings.Contains(body, "within 300ms") {
			t.Fatalf("attempt %d: outcome %q body %q", attempt, resp.Header.Get(headerOutcome), body)
		}
		if listener.count() != attempt {
			t.Fatalf("after attempt %d the EPP accepted %d connections, want one per attempt", attempt, listener.count())
		}
	}
}

func TestAGRPCErrorNamesTheStatus(t *testing.T) {
	epp := startEPP(t, func(extprocv3.ExternalProcessor_ProcessServer) error {
		return status.Error(codes.Internal, "datastore not synced")
	})
	expectEPPFailure(t, epp, 5*time.Second, "gRPC status Internal: datastore not synced")
}

func TestAnAnswerWithoutEndpointFails(t *testing.T) {
	epp := startEPP(t, func(stream extprocv3.ExternalProcessor_ProcessServer) error {
		for {
			message, err := stream.Recv()
			if err != nil {
				return nil
			}
			if _, isHeaders := message.GetRequest().(*extprocv3.ProcessingRequest_RequestHeaders); isHeaders {
				_ = stream.Send(headersAnswer(true, nil))
			} else {
				_ = stream.Send(streamedBody(true, "{}", true))
			}
		}
	})
	expectEPPFailure(t, epp, 5*time.Second, "without a destination endpoint")
}

func TestTheEndpointComesFromTheHeaderWhenTheMetadataLacksItAndTheFirstOfSeveralIsTaken(t *testing.T) {
	upstream := startUpstream(t)
	epp := startEPP(t, func(stream extprocv3.ExternalProcessor_ProcessServer) error {
		for {
			message, err := stream.Recv()
			if err != nil {
				return nil
			}
			switch message.GetRequest().(type) {
			case *extprocv3.ProcessingRequest_RequestBody:
				_ = stream.Send(headersAnswer(true, setHeaders(endpointKey, upstream+", 10.0.0.9:8000")))
				_ = stream.Send(streamedBody(true, "{}", true))
			case *extprocv3.ProcessingRequest_ResponseHeaders:
				_ = stream.Send(headersAnswer(false, nil))
			case *extprocv3.ProcessingRequest_ResponseBody:
				_ = stream.Send(streamedBody(false, "done", true))
			}
		}
	})
	resp, body := post(t, startRelay(t, 5*time.Second).URL, epp, `{"model":"food-review"}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get(headerEndpoint) != upstream || body != "done" {
		t.Fatalf("status %d endpoint %q body %q", resp.StatusCode, resp.Header.Get(headerEndpoint), body)
	}
}

func TestAnEndpointThatDoesNotAnswerIsReportedWithItsAddress(t *testing.T) {
	listener, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := listener.Addr().String()
	listener.Close()
	resp, body := post(t, startRelay(t, 5*time.Second).URL, startEPP(t, v1Style(closed, nil)), `{"model":"x"}`, nil)
	if resp.Header.Get(headerOutcome) != outcomeUpstreamFailed || resp.Header.Get(headerEndpoint) != closed ||
		!strings.Contains(body, "connection refused") {
		t.Fatalf("outcome %q endpoint %q body %q", resp.Header.Get(headerOutcome), resp.Header.Get(headerEndpoint), body)
	}
}

func TestConcurrentRequestsEachGetTheirOwnAnswer(t *testing.T) {
	upstream := startUpstream(t)
	relayURL := startRelay(t, 5*time.Second).URL
	epp := startEPP(t, v1Style(upstream, nil))
	var wg sync.WaitGroup
	failures := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, body := post(t, relayURL, epp, fmt.Sprintf(`{"model":"food-review","n":%d}`, i), nil)
			want := fmt.Sprintf(`{\"model\":\"food-review-1\",\"n\":%d}`, i)
			if resp.StatusCode != 200 || !strings.Contains(body, want) {
				failures <- errors.New(body)
			}
		}(i)
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
}

func TestABodylessRequestEndsTheStreamWithItsHeaders(t *testing.T) {
	upstream := startUpstream(t)
	ended := make(chan bool, 1)
	epp := startEPP(t, func(stream extprocv3.ExternalProcessor_ProcessServer) error {
		message, err := stream.Recv()
		if err != nil {
			return nil
		}
		ended <- message.GetRequestHeaders().GetEndOfStream()
		answer := headersAnswer(true, nil)
		answer.DynamicMetadata = endpointMetadata(upstream)
		_ = stream.Send(answer)
		for {
			if message, err = stream.Recv(); err != nil {
				return nil
			}
			if _, isHeaders := message.GetRequest().(*extprocv3.ProcessingRequest_ResponseHeaders); isHeaders {
				_ = stream.Send(headersAnswer(false, nil))
			} else {
				_ = stream.Send(streamedBody(false, "ok", true))
			}
		}
	})
	req, _ := http.NewRequest(http.MethodGet, startRelay(t, 5*time.Second).URL+"/v1/models", nil)
	req.Header.Set(headerEPP, epp)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !<-ended || resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("end_of_stream on the headers: %v; status %d body %q", false, resp.StatusCode, body)
	}
}

func TestAnotherPodAtAnEPPAddressGetsAConnectionOfItsOwn(t *testing.T) {
	listener := startCountingEPP(t, v1Style(startUpstream(t), nil))
	relayURL := startRelay(t, 5*time.Second).URL
	for i, want := range []struct {
		pod         string
		connections int
	}{{"uid-of-the-first-pod", 1}, {"uid-of-the-first-pod", 1}, {"uid-of-the-pod-after-it", 2}} {
		resp, body := post(t, relayURL, listener.Addr().String(), `{"model":"food-review"}`,
			map[string]string{headerEPPPod: want.pod})
		if resp.StatusCode != 200 || resp.Header.Get(headerOutcome) != outcomeForwarded {
			t.Fatalf("request %d: status %d outcome %q body %s", i, resp.StatusCode, resp.Header.Get(headerOutcome), body)
		}
		if listener.count() != want.connections {
			t.Fatalf("after request %d (pod %s) the EPP accepted %d connections, want %d", i, want.pod,
				listener.count(), want.connections)
		}
	}
}
