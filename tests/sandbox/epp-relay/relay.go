package main

// The HTTP side: the sandbox gateway hands over each request for an InferencePool backend, already routed and
// filtered, with the EPP to ask in X-Igw-Relay-Epp. The relay asks the EPP, forwards to the endpoint it names
// with the EPP's mutations, passes the response back through the EPP and answers with what the client gets.
// X-Igw-Relay-Outcome says what happened; the gateway keeps every policy (failureMode, stats, the answer to a
// failure) to itself.

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
)

const (
	headerEPP      = "X-Igw-Relay-Epp"
	headerEPPPod   = "X-Igw-Relay-Epp-Pod"
	headerOutcome  = "X-Igw-Relay-Outcome"
	headerEndpoint = "X-Igw-Relay-Endpoint"
	headerWarning  = "X-Igw-Relay-Warning"

	// Outcomes. eppFailed: the EPP could not be asked, failed or named no endpoint (the body says why; the
	// pool's failureMode applies); upstreamFailed: the endpoint it named did not answer.
	outcomeForwarded      = "forwarded"
	outcomeImmediate      = "immediate"
	outcomeEPPFailed      = "epp-failed"
	outcomeUpstreamFailed = "upstream-failed"

	upstreamTimeout = 60 * time.Second
)

// Connection-level headers are the hop's own, never sent on.
var hopByHop = map[string]bool{"connection": true, "keep-alive": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
	"content-length": true, "host": true}

type relay struct {
	timeout     time.Duration
	credentials credentials.TransportCredentials
	upstream    *http.Client

	mu      sync.Mutex
	clients map[string]*eppConn
}

type eppConn struct {
	pod    string
	conn   *grpc.ClientConn
	client extprocv3.ExternalProcessorClient
}

// newRelay speaks TLS to the EPPs without verifying them: each release serves a self-signed certificate
// without a host name that it makes at start, and GKE's load balancer does not verify it either.
func newRelay(timeout time.Duration) *relay {
	return &relay{
		timeout:     timeout,
		credentials: credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}), //nolint:gosec // as GKE's load balancer
		upstream: &http.Client{
			Timeout: upstreamTimeout,
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
				DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		clients: map[string]*eppConn{},
	}
}

// client is one connection per EPP address, shared by every request; a restarted EPP is dialled again soon.
// When another pod has the address now (its uid in pod), the connection to the pod that had it is closed at
// once: that pod's last packets may never have arrived (its address went with it), so the connection can hang
// or be reset, as Envoy drops the connections of an endpoint that leaves the EPP Service.
func (r *relay) client(target, pod string) (*eppConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[target]; ok {
		if c.pod == pod {
			return c, nil
		}
		delete(r.clients, target)
		_ = c.conn.Close()
	}
	conn, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(r.credentials),
		grpc.WithNoProxy(), grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second}))
	if err != nil {
		return nil, err
	}
	c := &eppConn{pod: pod, conn: conn, client: extprocv3.NewExternalProcessorClient(conn)}
	r.clients[target] = c
	return c, nil
}

// forget stops sharing a connection on which an EPP gave no answer in time. When a pod's EPP is replaced by
// one at the same address, the old TCP connection can hang rather than fail, and gRPC would keep every later
// stream on it; the next request dials afresh. Streams still on the old connection get their timeout to end.
func (r *relay) forget(target string, c *eppConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients[target] == c {
		delete(r.clients, target)
		time.AfterFunc(r.timeout, func() { _ = c.conn.Close() })
	}
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// headerList is a Go header map as Envoy lists it: lower-case names, repeated values joined, sorted by name
// (Go's map has no order to keep).
func headerList(h http.Header, skip map[string]bool) []header {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	list := make([]header, 0, len(names))
	for _, name := range names {
		lower := strings.ToLower(name)
		if !skip[lower] {
			list = append(list, header{lower, strings.Join(h[name], ",")})
		}
	}
	return list
}

// mutate applies an EPP's header mutation; pseudo-headers and Host stay the gateway's.
func mutate(h http.Header, set []header, remove []string) {
	for _, name := range remove {
		h.Del(name)
	}
	for _, s := range set {
		if !strings.HasPrefix(s.name, ":") && !strings.EqualFold(s.name, "host") {
			h.Set(s.name, s.value)
		}
	}
}

func reply(w http.ResponseWriter, outcome string, code int, h http.Header, body []byte) {
	for name, values := range h {
		if !hopByHop[strings.ToLower(name)] {
			w.Header()[name] = values
		}
	}
	w.Header().Set(headerOutcome, outcome)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func replyFailure(w http.ResponseWriter, outcome, endpoint string, err error) {
	h := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	if endpoint != "" {
		h.Set(headerEndpoint, endpoint)
	}
	reply(w, outcome, http.StatusBadGateway, h, []byte(err.Error()))
}

func (r *relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	target, pod := req.Header.Get(headerEPP), req.Header.Get(headerEPPPod)
	req.Header.Del(headerEPP)
	req.Header.Del(headerEPPPod)
	body, err := io.ReadAll(req.Body)
	if err != nil || target == "" {
		http.Error(w, fmt.Sprintf("a request with its body and %s is expected (%v)", headerEPP, err), http.StatusBadRequest)
		return
	}
	// Envoy's connection manager gives every request an id; the EPPs log it.
	if req.Header.Get("X-Request-Id") == "" {
		req.Header.Set("X-Request-Id", requestID())
	}
	pseudo := []header{{":method", req.Method}, {":path", req.URL.RequestURI()}, {":scheme", "http"},
		{":authority", req.Host}}
	epp, err := r.client(target, pod)
	if err != nil {
		replyFailure(w, outcomeEPPFailed, "", err)
		return
	}
	s, err := openSession(epp.client, target, r.timeout)
	if err != nil {
		replyFailure(w, outcomeEPPFailed, "", err)
		return
	}
	defer s.close()
	decision, err := s.request(append(pseudo, headerList(req.Header, nil)...), body)
	if err != nil {
		if s.timedOut {
			r.forget(target, epp)
		}
		replyFailure(w, outcomeEPPFailed, "", err)
		return
	}
	if im := decision.immediate; im != nil {
		h := http.Header{}
		set, remove := mutationOf(im.GetHeaders())
		mutate(h, set, remove)
		code := int(im.GetStatus().GetCode())
		if code == 0 {
			code = http.StatusOK
		}
		reply(w, outcomeImmediate, code, h, im.GetBody())
		return
	}
	endpoint := decision.endpoints[0]
	upstreamBody := body
	if decision.body != nil {
		upstreamBody = decision.body
	}
	forward, err := http.NewRequest(req.Method, "http://"+endpoint+req.URL.RequestURI(), bytes.NewReader(upstreamBody))
	if err != nil {
		replyFailure(w, outcomeUpstreamFailed, endpoint, err)
		return
	}
	for name, values := range req.Header {
		if !hopByHop[strings.ToLower(name)] {
			forward.Header[name] = values
		}
	}
	mutate(forward.Header, decision.setHeaders, decision.removeHeaders)
	forward.Header.Del("Content-Length")
	if forward.Header.Get("User-Agent") == "" {
		forward.Header["User-Agent"] = nil // not Go's own
	}
	resp, err := r.upstream.Do(forward)
	if err != nil {
		replyFailure(w, outcomeUpstreamFailed, endpoint, err)
		return
	}
	responseBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		replyFailure(w, outcomeUpstreamFailed, endpoint, err)
		return
	}
	w.Header().Set(headerEndpoint, endpoint)
	answer, err := s.response(resp.StatusCode, headerList(resp.Header, nil), responseBody)
	if err != nil {
		// Envoy lets the response through as it stands when the response phase fails; the gateway logs why.
		w.Header().Set(headerWarning, "response phase: "+err.Error())
		reply(w, outcomeForwarded, resp.StatusCode, resp.Header, responseBody)
		return
	}
	mutate(resp.Header, answer.setHeaders, answer.removeHeaders)
	reply(w, outcomeForwarded, resp.StatusCode, resp.Header, answer.body)
}
