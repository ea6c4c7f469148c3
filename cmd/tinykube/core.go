package main

import (
	"context"
	"net/http"
	"net/netip"

	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/storage/bolt"
)

// coreConfig is what the REST core and its store need from the flags.
type coreConfig struct {
	dbPath           string
	serviceCIDR      netip.Prefix
	nodePortRange    utilnet.PortRange
	advertiseAddress netip.Addr
	securePort       int
	kubeletTransport http.RoundTripper
}

// core is the REST core on its store, reduced to what `server` does with
// them: serve, bootstrap once, end watches when shutdown begins, close
// last.
type core struct {
	handler      http.Handler
	bootstrap    func(context.Context) error
	closeWatches func()
	close        func() error
}

// openCore opens the bbolt store and builds the API server on it.
func openCore(cfg coreConfig) (*core, error) {
	store, err := bolt.Open(cfg.dbPath, bolt.Options{})
	if err != nil {
		return nil, err
	}
	api, err := apiserver.New(apiserver.Config{
		Storage:          store,
		ServiceCIDR:      cfg.serviceCIDR,
		NodePortRange:    apiserver.PortRange{Base: cfg.nodePortRange.Base, Size: cfg.nodePortRange.Size},
		AdvertiseAddress: cfg.advertiseAddress,
		SecurePort:       cfg.securePort,
		KubeletTransport: cfg.kubeletTransport,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	return &core{
		handler:      api.Handler(),
		bootstrap:    api.Bootstrap,
		closeWatches: api.CloseWatches,
		close:        store.Close,
	}, nil
}
