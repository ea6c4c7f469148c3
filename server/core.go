package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/storage"
	"github.com/tinykube/tinykube/storage/bolt"
)

// StorePath is where a server keeps its store in dataDir.
func StorePath(dataDir string) string { return filepath.Join(dataDir, "server", "db", "state.db") }

// OpenStore opens the bbolt store at path. It is the first thing the
// server touches in the data dir: the store's file lock is what keeps a
// second server off the same data dir, before either writes keys.
func OpenStore(path string) (*bolt.Store, error) {
	return bolt.Open(path, bolt.Options{})
}

// coreConfig is what the REST core needs from the flags.
type coreConfig struct {
	serviceCIDR      netip.Prefix
	nodePortRange    utilnet.PortRange
	requestTimeout   time.Duration
	profiling        bool
	advertiseAddress netip.Addr
	securePort       int
	kubeletTransport http.RoundTripper
	// tolerationSeconds of the default not-ready and unreachable
	// tolerations new pods get.
	notReadyTolerationSeconds    int64
	unreachableTolerationSeconds int64
	// requests served at once; 0 means no limit.
	maxInFlight, maxMutatingInFlight int
	logger                           *slog.Logger
	// serviceAccounts issues service account tokens (TokenRequest). With
	// it, pods get upstream's ServiceAccount admission and their
	// kube-api-access volume; without it there would be no token to put
	// in that volume, so neither is served.
	serviceAccounts *authn.ServiceAccountTokens
}

// core is the REST core, reduced to what `server` does with it: serve,
// bootstrap once, end watches when shutdown begins.
type core struct {
	handler      http.Handler
	bootstrap    func(context.Context) error
	closeWatches func()
}

// newCore builds the API server on store.
func newCore(store storage.Interface, cfg coreConfig) (*core, error) {
	api, err := apiserver.New(apiserver.Config{
		Storage:          store,
		ServiceCIDR:      cfg.serviceCIDR,
		NodePortRange:    apiserver.PortRange{Base: cfg.nodePortRange.Base, Size: cfg.nodePortRange.Size},
		AdvertiseAddress: cfg.advertiseAddress,
		SecurePort:       cfg.securePort,
		RequestTimeout:   cfg.requestTimeout,
		Profiling:        cfg.profiling,
		KubeletTransport: cfg.kubeletTransport,

		DefaultNotReadyTolerationSeconds:    &cfg.notReadyTolerationSeconds,
		DefaultUnreachableTolerationSeconds: &cfg.unreachableTolerationSeconds,

		MaxRequestsInFlight:         noLimitIfZero(cfg.maxInFlight),
		MaxMutatingRequestsInFlight: noLimitIfZero(cfg.maxMutatingInFlight),

		ServiceAccountTokens:    cfg.serviceAccounts,
		Logger:                  cfg.logger,
		ServiceAccountAdmission: cfg.serviceAccounts != nil,
	})
	if err != nil {
		return nil, err
	}
	return &core{
		handler:      api.Handler(),
		bootstrap:    api.Bootstrap,
		closeWatches: api.CloseWatches,
	}, nil
}

// noLimitIfZero turns upstream's "0 disables the limit" into
// apiserver.Config's "negative means no limit" (its 0 is the default).
func noLimitIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
