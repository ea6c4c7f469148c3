package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/knftables"
)

// Config configures a Proxier.
type Config struct {
	// Client reaches the API server. Required.
	Client kubernetes.Interface
	// Informers provides the Service and EndpointSlice informers. The
	// caller starts it (after New). Required.
	Informers informers.SharedInformerFactory
	// NodeName is this node's name, to tell local endpoints. Required.
	NodeName string
	// NodeIPs are this node's addresses. Required.
	NodeIPs []netip.Addr
	// NodePortAddresses narrows the addresses on which NodePorts answer to
	// the node addresses inside these prefixes (127.0.0.0/8 enables
	// 127.0.0.1). Empty: every node address and 127.0.0.1.
	NodePortAddresses []netip.Prefix
	// ServiceCIDR is the range ClusterIPs come from; traffic to its
	// unallocated addresses is dropped. Required.
	ServiceCIDR netip.Prefix
	// ClusterCIDR is the pod range; traffic from outside it to a ClusterIP
	// is masqueraded. Invalid (zero): masquerade all ClusterIP traffic.
	ClusterCIDR netip.Prefix
	// NFT writes the rules; it must be for family inet, table TableName.
	// Nil: the real nftables, through the nft tool.
	NFT knftables.Interface
	// Sysctl sets kernel parameters. Nil: write /proc/sys.
	Sysctl Sysctl
	// Conntrack deletes stale UDP conntrack entries. Nil: netlink in the
	// proxy's own network namespace.
	Conntrack Conntrack
	// Listen opens the healthCheckNodePort listeners. Nil: net.Listen.
	Listen func(network, address string) (net.Listener, error)
	// Clock drives rate limiting and retries. Nil: the real clock.
	Clock clock.WithTicker
	// MinSyncInterval is the least time between two syncs. Zero: 10ms.
	MinSyncInterval time.Duration
	// SyncPeriod is how often every Service is recomputed and compared with
	// what was applied, whether or not an event came. Zero: one minute.
	SyncPeriod time.Duration
	// FlushOnShutdown removes the table when Run returns. By default the
	// rules stay, so that Services keep working across a restart.
	FlushOnShutdown bool
}

// Sysctl sets kernel parameters, for example
// Set("net/ipv4/conf/all/route_localnet", "1").
type Sysctl interface {
	Set(name, value string) error
}

// procSysctl writes /proc/sys.
type procSysctl struct{}

func (procSysctl) Set(name, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", name), []byte(value), 0o644)
}

const syncKey = "sync"

// Proxier programs this node's nftables ruleset from Services and
// EndpointSlices.
type Proxier struct {
	cfg      Config
	rules    ruleConfig
	nft      knftables.Interface
	clock    clock.WithTicker
	services corelisters.ServiceLister
	slices   cache.Indexer
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	health   *healthServer

	mu       sync.Mutex
	dirty    map[types.NamespacedName]bool
	needFull bool

	// used by the sync goroutine only
	applied *ruleset
	// udp holds the UDP frontends of the rules applied, per Service, for
	// the conntrack cleanup; only the sync goroutine uses it.
	udp       map[types.NamespacedName][]udpFrontend
	conntrack Conntrack
	lastSync  time.Time

	ready     chan struct{}
	readyOnce sync.Once

	// metrics of the last sync, for tests and benchmarks
	statsMu   sync.Mutex
	lastStats SyncStats
}

// SyncStats describes one sync.
type SyncStats struct {
	Full       bool
	Services   int // Services recomputed
	Operations int // nftables operations applied
	// ConntrackDeleted counts stale UDP conntrack entries deleted.
	ConntrackDeleted int
	Duration         time.Duration
	Err              error
}

// indexByService indexes EndpointSlices by "namespace/service-name".
const indexByService = "service"

// New validates cfg and sets up the informers' event handlers.
func New(cfg Config) (*Proxier, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New("proxy: Client and Informers are required")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("proxy: NodeName is required")
	}
	if len(cfg.NodeIPs) == 0 {
		return nil, errors.New("proxy: at least one node IP is required")
	}
	if !cfg.ServiceCIDR.IsValid() {
		return nil, errors.New("proxy: ServiceCIDR is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.MinSyncInterval == 0 {
		cfg.MinSyncInterval = 10 * time.Millisecond
	}
	if cfg.SyncPeriod == 0 {
		cfg.SyncPeriod = time.Minute
	}
	if cfg.Sysctl == nil {
		cfg.Sysctl = procSysctl{}
	}
	if cfg.Conntrack == nil {
		// The zero handle talks netlink in the caller's namespace.
		cfg.Conntrack = &netlink.Handle{}
	}
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	if cfg.NFT == nil {
		nft, err := knftables.New(knftables.InetFamily, TableName)
		if err != nil {
			return nil, fmt.Errorf("proxy: nftables: %w", err)
		}
		cfg.NFT = nft
	}

	p := &Proxier{
		cfg:       cfg,
		rules:     newRuleConfig(cfg),
		nft:       cfg.NFT,
		clock:     cfg.Clock,
		dirty:     map[types.NamespacedName]bool{},
		needFull:  true,
		applied:   newRuleset(),
		ready:     make(chan struct{}),
		udp:       map[types.NamespacedName][]udpFrontend{},
		conntrack: cfg.Conntrack,
	}
	p.health = newHealthServer(cfg.Listen)
	p.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "proxy", Clock: cfg.Clock})

	svcInformer := cfg.Informers.Core().V1().Services()
	sliceInformer := cfg.Informers.Discovery().V1().EndpointSlices()
	if err := sliceInformer.Informer().AddIndexers(cache.Indexers{indexByService: sliceServiceIndex}); err != nil {
		return nil, fmt.Errorf("proxy: EndpointSlice index: %w", err)
	}
	p.services = svcInformer.Lister()
	p.slices = sliceInformer.Informer().GetIndexer()

	svcReg, err := svcInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.serviceChanged(obj) },
		UpdateFunc: func(_, obj any) { p.serviceChanged(obj) },
		DeleteFunc: func(obj any) { p.serviceChanged(obj) },
	})
	if err != nil {
		return nil, err
	}
	sliceReg, err := sliceInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.sliceChanged(obj) },
		UpdateFunc: func(_, obj any) { p.sliceChanged(obj) },
		DeleteFunc: func(obj any) { p.sliceChanged(obj) },
	})
	if err != nil {
		return nil, err
	}
	// Synced once the handlers have seen every initial object, so that the
	// first sync does not wipe Services the caches have not delivered yet.
	p.synced = []cache.InformerSynced{svcReg.HasSynced, sliceReg.HasSynced}
	return p, nil
}

func newRuleConfig(cfg Config) ruleConfig {
	rc := ruleConfig{serviceCIDR: cfg.ServiceCIDR.Masked(), clusterCIDR: cfg.ClusterCIDR.Masked()}
	if len(cfg.NodePortAddresses) == 0 {
		rc.localhostNodePorts = true
	}
	for _, pfx := range cfg.NodePortAddresses {
		if pfx.Contains(localhost) {
			rc.localhostNodePorts = true
		}
	}
	for _, ip := range cfg.NodeIPs {
		if !ip.Is4() || ip.IsLoopback() {
			continue
		}
		ok := len(cfg.NodePortAddresses) == 0
		for _, pfx := range cfg.NodePortAddresses {
			ok = ok || pfx.Contains(ip)
		}
		if ok {
			rc.nodePortIPs = append(rc.nodePortIPs, ip)
		}
	}
	return rc
}

func sliceServiceIndex(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + name}, nil
}

func (p *Proxier) serviceChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	p.markDirty(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name})
}

func (p *Proxier) sliceChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return
	}
	p.markDirty(types.NamespacedName{Namespace: s.Namespace, Name: name})
}

// markDirty records a change; the runner does the work.
func (p *Proxier) markDirty(k types.NamespacedName) {
	p.mu.Lock()
	p.dirty[k] = true
	p.mu.Unlock()
	p.queue.Add(syncKey)
}

// WaitForCacheSync waits until the informers have delivered every object
// that existed when they started; false if ctx ended first.
func (p *Proxier) WaitForCacheSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), p.synced...)
}

// Ready is closed after the first successful sync.
func (p *Proxier) Ready() <-chan struct{} { return p.ready }

// LastSync returns the figures of the last sync.
func (p *Proxier) LastSync() SyncStats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	return p.lastStats
}

// Run waits for the informers, then syncs until ctx ends. With
// FlushOnShutdown it removes the table before returning.
func (p *Proxier) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	defer p.health.closeAll()
	if p.rules.localhostNodePorts {
		// Locally generated traffic to 127.0.0.1:nodePort is DNATed to pod
		// addresses; the kernel routes it out only with route_localnet.
		// filter-prerouting drops what arrives from outside for 127/8.
		if err := p.cfg.Sysctl.Set("net/ipv4/conf/all/route_localnet", "1"); err != nil {
			logger.Error(err, "route_localnet; NodePorts on 127.0.0.1 will not work")
		}
	}
	if !p.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	p.queue.Add(syncKey)
	go func() {
		<-ctx.Done()
		p.queue.ShutDown()
	}()
	ticker := p.clock.NewTicker(p.cfg.SyncPeriod)
	defer ticker.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C():
				p.mu.Lock()
				for _, k := range p.allServiceKeys() {
					p.dirty[k] = true
				}
				p.mu.Unlock()
				p.queue.Add(syncKey)
			}
		}
	}()
	for p.processNext(ctx) {
	}
	if p.cfg.FlushOnShutdown {
		if err := p.Flush(context.Background()); err != nil {
			return err
		}
	}
	return nil
}

func (p *Proxier) processNext(ctx context.Context) bool {
	key, shutdown := p.queue.Get()
	if shutdown {
		return false
	}
	defer p.queue.Done(key)
	if wait := p.cfg.MinSyncInterval - p.clock.Since(p.lastSync); !p.lastSync.IsZero() && wait > 0 {
		p.queue.AddAfter(key, wait)
		return true
	}
	stats := p.Sync(ctx)
	if stats.Err != nil {
		if ctx.Err() != nil {
			return true // shutting down: nft was cut off, not refused
		}
		klog.FromContext(ctx).Error(stats.Err, "syncing nftables rules; will rebuild the table")
		p.queue.AddRateLimited(key)
		return true
	}
	p.queue.Forget(key)
	return true
}

// allServiceKeys lists every Service in the informer cache.
func (p *Proxier) allServiceKeys() []types.NamespacedName {
	var keys []types.NamespacedName
	svcs, _ := p.services.List(labels.Everything())
	for _, s := range svcs {
		keys = append(keys, types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
	}
	return keys
}

// Sync applies the pending changes once, as one nftables transaction: a full
// rebuild of the table on the first call and after a failure, otherwise only
// the Services that changed. Run calls it; tests and benchmarks may too.
func (p *Proxier) Sync(ctx context.Context) SyncStats {
	start := p.clock.Now()
	p.mu.Lock()
	full := p.needFull
	dirty := p.dirty
	p.dirty = map[types.NamespacedName]bool{}
	p.needFull = false
	p.mu.Unlock()

	var keys []types.NamespacedName
	if full {
		keys = p.allServiceKeys()
	} else {
		for k := range dirty {
			keys = append(keys, k)
		}
	}
	frags := make(map[types.NamespacedName]*fragment, len(keys))
	hc := map[types.NamespacedName]healthCheck{}
	udp := map[types.NamespacedName][]udpFrontend{}
	for _, k := range keys {
		f, check, fes := p.compute(k)
		frags[k] = f // nil when the Service is gone or not ours
		if check.port != 0 {
			hc[k] = check
		}
		udp[k] = fes
	}

	tx := p.nft.NewTransaction()
	if full {
		nonNil := map[types.NamespacedName]*fragment{}
		for k, f := range frags {
			if f != nil {
				nonNil[k] = f
			}
		}
		// knftables' fake keeps elements one by one; the real nft
		// takes them in batches.
		_, fake := p.nft.(*knftables.Fake)
		writeFull(tx, &p.rules, nonNil, p.applied, !fake)
	} else {
		writePartial(tx, &p.rules, frags, p.applied) // nil fragments: Services gone
	}
	stats := SyncStats{Full: full, Services: len(keys), Operations: tx.NumOperations()}
	var err error
	if tx.NumOperations() > 0 {
		err = p.nft.Run(ctx, tx)
	}
	if err != nil {
		stats.Err = err
		p.mu.Lock()
		p.needFull = true
		for k := range dirty {
			p.dirty[k] = true
		}
		p.mu.Unlock()
		p.applied = newRuleset()
	} else {
		p.health.update(keys, hc, full)
		// Only once the new rules are in: a flow deleted earlier could be
		// recreated by the old ones.
		if changed, gone := p.udpChanges(udp, full); changed {
			if n, err := p.cleanUDPConntrack(gone); err != nil {
				klog.FromContext(ctx).Error(err, "deleting stale UDP conntrack entries")
			} else {
				stats.ConntrackDeleted = int(n)
			}
		}
		p.readyOnce.Do(func() { close(p.ready) })
	}
	p.lastSync = p.clock.Now()
	stats.Duration = p.lastSync.Sub(start)
	p.statsMu.Lock()
	p.lastStats = stats
	p.statsMu.Unlock()
	return stats
}

// compute builds the fragment of one Service from the informer caches, and
// its health check if it has one.
func (p *Proxier) compute(k types.NamespacedName) (*fragment, healthCheck, []udpFrontend) {
	svc, err := p.services.Services(k.Namespace).Get(k.Name)
	if err != nil {
		return nil, healthCheck{}, nil
	}
	objs, _ := p.slices.ByIndex(indexByService, k.Namespace+"/"+k.Name)
	slices := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		slices = append(slices, o.(*discoveryv1.EndpointSlice))
	}
	ports := servicePorts(svc, slices, p.cfg.NodeName)
	if len(ports) == 0 {
		return nil, healthCheck{}, nil
	}
	var check healthCheck
	if ports[0].externalLocal && svc.Spec.HealthCheckNodePort != 0 {
		check.port = int(svc.Spec.HealthCheckNodePort)
		for _, sp := range ports {
			_, local, _ := sp.categorize()
			check.localEndpoints = max(check.localEndpoints, len(local))
		}
	}
	return buildFragment(&p.rules, ports), check, udpFrontends(ports)
}

// Flush removes the proxy's table from the kernel.
func (p *Proxier) Flush(ctx context.Context) error {
	tx := p.nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := p.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("proxy: removing table %s: %w", TableName, err)
	}
	p.applied = newRuleset()
	p.mu.Lock()
	p.needFull = true
	p.mu.Unlock()
	return nil
}
