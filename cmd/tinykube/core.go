package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/version"
)

// coreConfig is what the REST core and its store need from the flags.
type coreConfig struct {
	dbPath           string
	serviceCIDR      netip.Prefix
	nodePortRange    utilnet.PortRange
	advertiseAddress netip.Addr
	securePort       int
}

// core is the REST core on its store, reduced to what `server` does with
// them: serve, bootstrap once, close last.
type core struct {
	handler   http.Handler
	bootstrap func(context.Context) error
	close     func() error
}

// openCore is a stand-in until the REST core (package apiserver) and the
// bbolt store land: it serves /version and the health paths only.
func openCore(cfg coreConfig) (*core, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(version.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2-tinykube"})
	})
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	}
	return &core{
		handler:   mux,
		bootstrap: func(context.Context) error { return nil },
		close:     func() error { return nil },
	}, nil
}
