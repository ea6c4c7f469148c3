// Command testserver is the HTTP server baked into the test image built by
// package testimage. It listens on $PORT (default 8080) and serves:
//
//	/          "hello from HOSTNAME\n"
//	/healthz   200 while healthy; 500 after /sick was called
//	/sick      makes /healthz fail from now on
//	/env?name= the value of an environment variable
//	/exit?code= exits with the code
//	/fetch?url= GETs url from inside the pod and returns its body, so tests
//	            see what a pod sees (cluster DNS names, ClusterIPs)
//	/lookup?name= the addresses name resolves to, one per line
//	/incluster?path= GETs path from the API server as an in-cluster client
//	            does (https://kubernetes.default.svc, the service account's
//	            token and CA) and returns the status line and body
//
// It logs one line per request to stdout and handles SIGTERM by exiting 0
// after $TERM_DELAY (a Go duration, default 0).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	var sick atomic.Bool
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/sick", func(w http.ResponseWriter, r *http.Request) {
		sick.Store(true)
		fmt.Fprintln(w, "now sick")
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		fmt.Fprintln(w, "bye")
		go func() { time.Sleep(50 * time.Millisecond); os.Exit(code) }()
	})
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		// A new connection per fetch, so a Service balances every one.
		c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	mux.HandleFunc("/lookup", func(w http.ResponseWriter, r *http.Request) {
		addrs, err := net.DefaultResolver.LookupHost(r.Context(), r.URL.Query().Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		for _, a := range addrs {
			fmt.Fprintln(w, a)
		}
	})
	mux.HandleFunc("/incluster", func(w http.ResponseWriter, r *http.Request) {
		const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
		token, err1 := os.ReadFile(sa + "token")
		ca, err2 := os.ReadFile(sa + "ca.crt")
		if err1 != nil || err2 != nil {
			http.Error(w, fmt.Sprint(err1, err2), http.StatusInternalServerError)
			return
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		req, _ := http.NewRequest("GET", "https://kubernetes.default.svc"+r.URL.Query().Get("path"), nil)
		req.Header.Set("Authorization", "Bearer "+string(token))
		resp, err := c.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		fmt.Fprintln(w, resp.Status)
		_, _ = io.Copy(w, resp.Body)
	})
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("%s %s\n", r.Method, r.URL.Path)
		mux.ServeHTTP(w, r)
	})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Println("SIGTERM")
		if d, err := time.ParseDuration(os.Getenv("TERM_DELAY")); err == nil {
			time.Sleep(d)
		}
		os.Exit(0)
	}()
	fmt.Printf("listening on :%s\n", port)
	if err := http.ListenAndServe(":"+port, logged); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
