// Command epp-relay is the sandbox gateway's ext_proc data plane: for each request that the gateway routes to
// an InferencePool, it asks the pool's endpoint picker over Envoy's external processing protocol, forwards to
// the endpoint the picker names and passes the response back through the picker, as GKE's load balancer does
// through its service extension. The gateway (Python) keeps routing and policy; the per-request exchange is
// here because a gRPC stream per request costs too much in Python to reach hundreds of requests per second.
//
//	epp-relay -socket PATH [-message-timeout 10s] [-exit-with-stdin]
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	socket := flag.String("socket", "", "Unix socket the gateway sends requests to")
	timeout := flag.Duration("message-timeout", 10*time.Second,
		"how long to wait for each answer of the EPP, as Envoy's ext_proc message_timeout")
	exitWithStdin := flag.Bool("exit-with-stdin", false, "exit when standard input closes (the gateway is gone)")
	flag.Parse()
	if *socket == "" {
		log.Fatal("-socket is required")
	}
	_ = os.Remove(*socket)
	listener, err := net.Listen("unix", *socket)
	if err != nil {
		log.Fatalf("listen on %s: %v", *socket, err)
	}
	if *exitWithStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			_ = os.Remove(*socket)
			os.Exit(0)
		}()
	}
	log.Printf("relaying on %s (message timeout %s)", *socket, *timeout)
	server := &http.Server{Handler: newRelay(*timeout), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	log.Fatal(server.Serve(listener))
}
