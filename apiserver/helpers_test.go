package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/storage/bolt"
)

// testServer is an API server on a real bolt store in a temp dir, served
// over plain HTTP on 127.0.0.1.
type testServer struct {
	t      testing.TB
	api    *Server
	store  *bolt.Store
	http   *httptest.Server
	config *rest.Config
	client kubernetes.Interface
}

// newTestServer starts a test server; configure, when given, tunes its
// Config.
func newTestServer(t testing.TB, configure ...func(*Config)) *testServer {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "tinykube.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	cfg := Config{
		Storage:          store,
		AdvertiseAddress: netip.MustParseAddr("127.0.0.1"),
	}
	for _, c := range configure {
		c(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := api.Bootstrap(context.Background()); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = store.Close()
	})
	config := &rest.Config{Host: srv.URL, QPS: 1000, Burst: 1000}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &testServer{t: t, api: api, store: store, http: srv, config: config, client: client}
}

// rawResponse is what a raw HTTP request got back.
type rawResponse struct {
	code   int
	header http.Header
	body   []byte
}

// do sends a raw request; contentType may be empty.
func (ts *testServer) do(method, path, contentType, body string, header ...string) rawResponse {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.http.URL+path, strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResponse{code: resp.StatusCode, header: resp.Header, body: b}
}

// status decodes a Status body.
func (r rawResponse) status(t *testing.T) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(r.body, &st); err != nil || st.Kind != "Status" {
		t.Fatalf("body is not a Status (%v): %s", err, r.body)
	}
	return st
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
