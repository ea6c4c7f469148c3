// Package apiservertest starts the real API server on a real bbolt store in
// a temp dir, over plain HTTP on 127.0.0.1, for the tests of the components
// that are its clients (controllers, scheduler, kubelet, proxy). It can
// restart the server on the same data and address, as a crash and restart
// of `tinykube server` would.
package apiservertest

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/storage/bolt"
)

// Options tune the server under test. The zero value is fine.
type Options struct {
	// Store tunes the bbolt store (for example a short Retention, to test
	// clients against 410 Gone).
	Store bolt.Options
	// API is passed to apiserver.New; Storage is filled in.
	API apiserver.Config
	// Users, when set, puts the authenticator in front of the server:
	// each bearer token authenticates as its user, and every request is
	// authorized as in `tinykube server`. Config and Client then act as
	// AdminToken, in system:masters. Service account tokens of
	// API.ServiceAccountTokens authenticate too.
	Users map[string]authn.User
}

// AdminToken authenticates Config and Client when Options.Users is set.
const AdminToken = "apiservertest-admin"

// Server is a running API server.
type Server struct {
	t    testing.TB
	opts Options
	path string
	addr string

	mu    sync.Mutex
	store *bolt.Store
	http  *http.Server
	done  chan struct{}

	// Config reaches the server; it stays valid across restarts.
	Config *rest.Config
	// Client is a typed clientset on Config.
	Client kubernetes.Interface
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if !opts.API.AdvertiseAddress.IsValid() {
		opts.API.AdvertiseAddress = netip.MustParseAddr("127.0.0.1")
	}
	s := &Server{t: t, opts: opts, path: filepath.Join(t.TempDir(), "state.db")}
	if err := s.start("127.0.0.1:0"); err != nil {
		t.Fatalf("starting API server: %v", err)
	}
	s.Config = &rest.Config{Host: "http://" + s.addr, QPS: 5000, Burst: 5000}
	if opts.Users != nil {
		s.Config.BearerToken = AdminToken
	}
	client, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	s.Client = client
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(addr string) error {
	store, err := bolt.Open(s.path, s.opts.Store)
	if err != nil {
		return err
	}
	cfg := s.opts.API
	cfg.Storage = store
	api, err := apiserver.New(cfg)
	if err != nil {
		store.Close()
		return err
	}
	if err := api.Bootstrap(context.Background()); err != nil {
		store.Close()
		return err
	}
	// The old listener's port may take a moment to be released after a
	// restart; retry briefly.
	var ln net.Listener
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		store.Close()
		return err
	}
	handler, err := s.authenticated(api.Handler())
	if err != nil {
		store.Close()
		return err
	}
	srv := &http.Server{Handler: handler}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.t.Errorf("API server: %v", err)
		}
	}()
	s.mu.Lock()
	s.store, s.http, s.done, s.addr = store, srv, done, ln.Addr().String()
	s.mu.Unlock()
	return nil
}

// authenticated puts the authenticator of Options.Users in front of h.
func (s *Server) authenticated(h http.Handler) (http.Handler, error) {
	if s.opts.Users == nil {
		return h, nil
	}
	users := map[string]authn.User{AdminToken: {Name: "apiservertest-admin", Groups: []string{"system:masters"}}}
	maps.Copy(users, s.opts.Users)
	tokens, err := authn.NewTokens(users)
	if err != nil {
		return nil, err
	}
	a, err := authn.New(authn.Config{Tokens: []*authn.Tokens{tokens}, ServiceAccounts: s.opts.API.ServiceAccountTokens})
	if err != nil {
		return nil, err
	}
	return a.Wrap(h), nil
}

// ConfigFor is a client configuration that authenticates with token, one
// of Options.Users.
func (s *Server) ConfigFor(token string) *rest.Config {
	c := rest.CopyConfig(s.Config)
	c.BearerToken = token
	return c
}

// Stop stops the server: open connections and watches are cut, as a crash
// would cut them. It may be called more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, store, done := s.http, s.store, s.done
	s.http, s.store = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	<-done
	store.Close()
}

// Restart stops the server and starts it again on the same data and
// address; clients keep their Config.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(s.addr); err != nil {
		s.t.Fatalf("restarting API server: %v", err)
	}
}

// Store is the store under the running server, for tests that compact it
// or read what was persisted.
func (s *Server) Store() *bolt.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store
}
