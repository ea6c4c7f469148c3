package apiserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/tinykube/tinykube/apiserver/admission"
	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/storage"
)

// PortRange is a contiguous range of ports: Base, Base+1, ..., Base+Size-1.
type PortRange struct {
	Base int
	Size int
}

// Contains reports whether port lies in the range.
func (p PortRange) Contains(port int) bool { return port >= p.Base && port < p.Base+p.Size }

// String prints the range as the --service-node-port-range flag spells it.
func (p PortRange) String() string { return fmt.Sprintf("%d-%d", p.Base, p.Base+p.Size-1) }

// Config is what the API server needs from its caller.
type Config struct {
	Storage          storage.Interface
	ServiceCIDR      netip.Prefix // default 10.43.0.0/16
	NodePortRange    PortRange    // default {Base: 30000, Size: 2768}
	AdvertiseAddress netip.Addr   // address of the `kubernetes` Service's endpoints
	SecurePort       int          // default 6443

	// KubeletTransport reaches kubelets' HTTPS API (with the API server's
	// client certificate) for pods/log, exec, attach and portforward;
	// those answer 503 when it is nil.
	KubeletTransport http.RoundTripper

	// DefaultNotReadyTolerationSeconds and
	// DefaultUnreachableTolerationSeconds are the tolerationSeconds of the
	// NoExecute tolerations for node.kubernetes.io/not-ready and
	// node.kubernetes.io/unreachable that every new pod gets, as upstream's
	// DefaultTolerationSeconds admission gives them; 300 when nil.
	DefaultNotReadyTolerationSeconds    *int64
	DefaultUnreachableTolerationSeconds *int64

	// ServiceAccountTokens issues the tokens of serviceaccounts/<name>/token
	// (TokenRequest), which answers 404 when it is nil.
	ServiceAccountTokens *authn.ServiceAccountTokens
	// ServiceAccountExtendTokenExpiration is upstream's
	// --service-account-extend-token-expiration: the kubelet's pod-bound
	// tokens of 3607 s are valid for a year; true when nil.
	ServiceAccountExtendTokenExpiration *bool
	// ServiceAccountAdmission runs upstream's ServiceAccount admission on
	// pod creates: the service account must exist, and pods get the
	// kube-api-access volume. The server turns it on; off, tests that run
	// no serviceaccount controller can create pods in new namespaces.
	ServiceAccountAdmission bool

	// MaxRequestsInFlight and MaxMutatingRequestsInFlight are upstream's
	// --max-requests-inflight and --max-mutating-requests-inflight: how
	// many read-only and mutating requests may be served at once before
	// the next gets 429 (see inflight.go for what is not counted and the
	// per-user share). 0 takes upstream's defaults, 400 and 200; a
	// negative value means no limit.
	MaxRequestsInFlight         int
	MaxMutatingRequestsInFlight int
	// Profiling serves Go's profiles under /debug/pprof/ to those allowed
	// to get them (upstream's --profiling, which is on by default).
	Profiling bool
	// RequestTimeout is upstream's --request-timeout: how long a request
	// that is not long-running (watches and pod streams are) may take,
	// reading its body included, before it is answered 504; 60 s when 0.
	RequestTimeout time.Duration

	// Now is the clock for timestamps; time.Now when nil.
	Now func() time.Time

	// Logger is where the server logs; the caller tags it (e.g.
	// component=apiserver). Nothing is logged when nil.
	Logger *slog.Logger
}

// Server serves the Kubernetes API over one storage.Interface.
type Server struct {
	cfg       Config
	store     storage.Interface
	scheme    *runtime.Scheme
	codecs    serializer.CodecFactory
	resources *resourceTable
	now       func() time.Time
	log       *slog.Logger
	admission *admission.Chain
	// watchBookmarkInterval is how often a watch that asked for bookmarks
	// gets one while nothing else happens.
	watchBookmarkInterval time.Duration
	// eventCache shares decoded watch objects between watch streams,
	// snapshots their initial states.
	eventCache *eventCache
	snapshots  *snapshots
	// A watch whose client falls more than watchQueueEvents or
	// watchQueueBytes behind is ended, after watchSlowGrace to finish the
	// write it is in.
	watchQueueEvents, watchQueueBytes int
	watchSlowGrace                    time.Duration
	// watchInit holds a token per watch sending its initial state.
	watchInit     chan struct{}
	fieldManagers *fieldManagers
	// watchesDone is closed by CloseWatches to end every running watch.
	watchesDone      chan struct{}
	closeWatchesOnce sync.Once
	// eventSweep rate-limits sweeps of expired events.
	eventSweep struct {
		sync.Mutex
		last time.Time
	}
	openAPIOnce   sync.Once
	openAPIV3Docs map[schema.GroupVersion][]byte
	serviceIPs    *ipAllocator
	nodePorts     *portAllocator
	authz         *authorization
	inFlight      *inFlight
	// routed, when set (by tests), sees every resource request's target
	// just before it is served.
	routed func(*http.Request, requestTarget)
}

// New validates cfg, fills in defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Storage == nil {
		return nil, errors.New("apiserver: Config.Storage is required")
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = netip.MustParsePrefix("10.43.0.0/16")
	}
	cfg.ServiceCIDR = cfg.ServiceCIDR.Masked()
	if cfg.NodePortRange == (PortRange{}) {
		cfg.NodePortRange = PortRange{Base: 30000, Size: 2768}
	}
	if cfg.NodePortRange.Base <= 0 || cfg.NodePortRange.Size <= 0 || cfg.NodePortRange.Base+cfg.NodePortRange.Size > 65536 {
		return nil, fmt.Errorf("apiserver: invalid node port range %s", cfg.NodePortRange)
	}
	if cfg.SecurePort == 0 {
		cfg.SecurePort = 6443
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	if cfg.RequestTimeout < 0 {
		return nil, fmt.Errorf("apiserver: invalid request timeout %v", cfg.RequestTimeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("apiserver: building scheme: %w", err)
	}
	s := &Server{
		cfg:                   cfg,
		store:                 cfg.Storage,
		scheme:                scheme,
		codecs:                serializer.NewCodecFactory(scheme, serializer.EnableStrict),
		now:                   cfg.Now,
		log:                   cfg.Logger,
		watchBookmarkInterval: time.Minute,
		fieldManagers:         newFieldManagers(scheme),
		watchesDone:           make(chan struct{}),
		eventCache:            newEventCache(),
		snapshots:             newSnapshots(),
		watchQueueEvents:      watchQueueEvents,
		watchQueueBytes:       watchQueueBytes,
		watchSlowGrace:        watchSlowGrace,
		watchInit:             make(chan struct{}, watchInitConcurrency),
		inFlight: newInFlight(inFlightLimit(cfg.MaxRequestsInFlight, defaultMaxRequestsInFlight),
			inFlightLimit(cfg.MaxMutatingRequestsInFlight, defaultMaxMutatingRequestsInFlight)),
	}
	ips, err := newIPAllocator(cfg.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	s.serviceIPs = ips
	s.nodePorts = newPortAllocator(cfg.NodePortRange)
	s.setUpAuthorization()
	s.resources = newResourceTable(s)
	if s.admission, err = admission.NewChain(s.admissionPlugins()...); err != nil {
		return nil, err
	}
	return s, nil
}

// CloseWatches ends every running watch (clients reconnect and resume from
// their last resourceVersion). Watches are long-lived requests that
// http.Server.Shutdown would otherwise wait for; register it with
// http.Server.RegisterOnShutdown.
func (s *Server) CloseWatches() {
	s.closeWatchesOnce.Do(func() { close(s.watchesDone) })
}

// Handler returns every route of the API. It does no authentication; the
// caller puts that in front. It authorizes every request that carries an
// authenticated user (authn.WithUser).
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(recoverAsStatus)
	r.Use(s.withCanonicalPath)
	r.Use(s.inFlight.limit)
	r.Use(s.withRequestTimeout)
	r.Use(s.withAuthorization)
	r.Get("/version", s.serveVersion)
	if s.cfg.Profiling {
		routeProfiling(r)
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		r.Get(p, s.serveHealth)
		r.Get(p+"/*", s.serveHealth)
	}
	r.Get("/api", s.serveLegacyVersions)
	r.Get("/apis", s.serveGroups)
	r.Get("/apis/{group}", s.serveGroup)
	r.Get("/openapi/v3", s.serveOpenAPIV3Index)
	r.Get("/openapi/v3/*", s.serveOpenAPIV3GroupVersion)
	r.Get("/openapi/v2", s.serveOpenAPIV2)
	r.HandleFunc("/api/{version}", s.serveResourceRequest(""))
	r.HandleFunc("/api/{version}/*", s.serveResourceRequest(""))
	r.HandleFunc("/apis/{group}/{version}", s.serveResourceRequest("{group}"))
	r.HandleFunc("/apis/{group}/{version}/*", s.serveResourceRequest("{group}"))
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, errNotFoundPath(req))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, errMethodNotSupported(req))
	})
	return r
}

// recoverAsStatus turns a handler panic into a 500 Status, so that even a
// bug answers in the shape clients expect. http.ErrAbortHandler keeps its
// meaning (abort the response silently).
func recoverAsStatus(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeStatus(w, statusFor(apierrors.NewInternalError(fmt.Errorf("panic: %v", v))))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
