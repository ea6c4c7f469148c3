package nodenet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/knftables"
)

// Backend is how pod traffic crosses between nodes.
type Backend string

const (
	// HostGW routes each other node's podCIDR via that node's address, with
	// no encapsulation. All nodes must share one L2 segment.
	HostGW Backend = "host-gw"
	// VXLAN carries pod traffic in VXLAN (VNI 1, UDP 8472) between nodes
	// that reach each other only through routers.
	VXLAN Backend = "vxlan"
)

// ParseBackend reads a backend's name, as a flag gives it; "" is HostGW.
func ParseBackend(name string) (Backend, error) {
	switch b := Backend(name); b {
	case "":
		return HostGW, nil
	case HostGW, VXLAN:
		return b, nil
	}
	return "", fmt.Errorf("unknown backend %q (want %q or %q)", name, HostGW, VXLAN)
}

// RouteProtocol marks the routes nodenet owns ("proto 116" in `ip route`):
// unused by the routing daemons iproute2 knows, so any route with it is ours.
const RouteProtocol netlink.RouteProtocol = 116

// DefaultClusterCIDR is the pod range when Config.ClusterCIDR is not set.
const DefaultClusterCIDR = "10.42.0.0/16"

// Config configures a NodeNet.
type Config struct {
	// Nodes is the Node informer of a SharedInformerFactory. New registers
	// its handler; the caller starts the factory (after New). Required.
	Nodes coreinformers.NodeInformer
	// Client patches this node's annotations. Required.
	Client kubernetes.Interface
	// NodeName is this node's name. Required.
	NodeName string
	// NodeIP is this node's IPv4 address: other nodes route to it (host-gw)
	// or send VXLAN packets to it. Required.
	NodeIP netip.Addr
	// ClusterCIDR is the pod range of the cluster. Zero: 10.42.0.0/16.
	ClusterCIDR netip.Prefix
	// Backend is HostGW or VXLAN. Empty: HostGW.
	Backend Backend
	// Netns is the network namespace to work in, as a path
	// (/var/run/netns/NAME, /proc/PID/ns/net). Empty: the current one.
	Netns string
	// NFT writes the masquerade rules; it must be for family ip, table
	// TableName. Nil: the real nftables, through the nft tool.
	NFT knftables.Interface
	// Sysctl sets kernel parameters. Nil: write /proc/sys.
	Sysctl Sysctl
	// Clock drives resyncs and retries. Nil: the real clock.
	Clock clock.WithTicker
	// ResyncPeriod is how often the whole state is rewritten whether or not
	// a Node or a route changed, restoring what someone else removed
	// without the kernel telling (the nft table). Zero: 30s.
	ResyncPeriod time.Duration
}

// Sysctl sets kernel parameters, named as under /proc/sys, for example
// Set("net/ipv4/ip_forward", "1").
type Sysctl interface {
	Set(name, value string) error
}

// procSysctl writes /proc/sys of the current network namespace.
type procSysctl struct{}

func (procSysctl) Set(name, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", filepath.Clean("/"+name)), []byte(value), 0o644)
}

// NodeNet keeps one node's routes, VXLAN device and masquerade rules in sync
// with the Node objects.
type NodeNet struct {
	cfg     Config
	nl      *netlink.Handle
	netns   *netns.NsHandle // nil: the current namespace
	nodes   corelisters.NodeLister
	synced  cache.InformerSynced
	changed chan struct{}
	ready   chan struct{}

	// Only the Run goroutine touches the fields below.
	appliedRules string            // the nft ruleset last applied
	warned       map[string]string // node name -> its problem in the last sync
	warnings     map[string]string // node name -> its problem in this sync
}

// New validates cfg, fills in defaults and registers the Node event handler.
func New(cfg Config) (*NodeNet, error) {
	if cfg.Nodes == nil || cfg.Client == nil {
		return nil, errors.New("nodenet: Nodes and Client are required")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("nodenet: NodeName is required")
	}
	if !cfg.NodeIP.Is4() {
		return nil, fmt.Errorf("nodenet: NodeIP must be an IPv4 address, got %q", cfg.NodeIP)
	}
	if !cfg.ClusterCIDR.IsValid() {
		cfg.ClusterCIDR = netip.MustParsePrefix(DefaultClusterCIDR)
	}
	if !cfg.ClusterCIDR.Addr().Is4() {
		return nil, fmt.Errorf("nodenet: ClusterCIDR must be IPv4, got %s", cfg.ClusterCIDR)
	}
	cfg.ClusterCIDR = cfg.ClusterCIDR.Masked()
	backend, err := ParseBackend(string(cfg.Backend))
	if err != nil {
		return nil, fmt.Errorf("nodenet: %w", err)
	}
	cfg.Backend = backend
	if cfg.Sysctl == nil {
		cfg.Sysctl = procSysctl{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = 30 * time.Second
	}
	n := &NodeNet{
		cfg:     cfg,
		nodes:   cfg.Nodes.Lister(),
		changed: make(chan struct{}, 1),
		ready:   make(chan struct{}),
		warned:  map[string]string{},
	}
	if n.cfg.NFT == nil {
		nft, err := knftables.New(knftables.IPv4Family, TableName)
		if err != nil {
			return nil, fmt.Errorf("nodenet: nftables: %w", err)
		}
		n.cfg.NFT = nft
	}
	if err := n.openNetlink(); err != nil {
		return nil, err
	}
	reg, err := cfg.Nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { n.poke() },
		UpdateFunc: func(old, cur any) { n.nodeUpdated(old, cur) },
		DeleteFunc: func(any) { n.poke() },
	})
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("nodenet: node informer: %w", err)
	}
	n.synced = reg.HasSynced
	return n, nil
}

// openNetlink opens the netlink handle (and namespace) of cfg.Netns.
func (n *NodeNet) openNetlink() error {
	if n.cfg.Netns == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("nodenet: netlink: %w", err)
		}
		n.nl = h
		return nil
	}
	ns, err := netns.GetFromPath(n.cfg.Netns)
	if err != nil {
		return fmt.Errorf("nodenet: network namespace: %w", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return fmt.Errorf("nodenet: netlink in %s: %w", n.cfg.Netns, err)
	}
	n.nl, n.netns = h, &ns
	return nil
}

// Close releases the netlink handle and namespace New opened; call it
// last, after Run and Cleanup.
func (n *NodeNet) Close() {
	n.nl.Close()
	if n.netns != nil {
		n.netns.Close()
	}
}

// nodeUpdated wakes the runner unless only what nodenet ignores changed:
// nodes rewrite their status (conditions, heartbeats) every few seconds.
func (n *NodeNet) nodeUpdated(old, cur any) {
	o, ok1 := old.(*corev1.Node)
	c, ok2 := cur.(*corev1.Node)
	if ok1 && ok2 && viewOf(o) == viewOf(c) {
		return
	}
	n.poke()
}

// poke asks the runner for a sync; it never blocks, and pokes that come
// while one is pending are folded into it.
func (n *NodeNet) poke() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// maxBackoff caps the wait before a failed sync is retried.
const maxBackoff = 10 * time.Second

// Ready is closed after the first successful sync: once this node's Node
// exists (and, for vxlan, has a podCIDR), and routes, table and this node's
// annotations are all written.
func (n *NodeNet) Ready() <-chan struct{} { return n.ready }

// Run syncs on every relevant Node change, on every change of the main
// routing table but nodenet adding its own routes, and every ResyncPeriod,
// until ctx ends. A failed sync is retried with back-off (up to 10s) and
// logged. The kernel state stays when Run returns; Cleanup removes it.
func (n *NodeNet) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("nodenet")
	if !cache.WaitForCacheSync(ctx.Done(), n.synced) {
		return ctx.Err()
	}
	logger.Info("Starting", "node", n.cfg.NodeName, "backend", n.cfg.Backend, "clusterCIDR", n.cfg.ClusterCIDR)
	defer n.watchKernel(ctx)() // waits for the watchers, which stop with ctx
	resync := n.cfg.Clock.NewTicker(n.cfg.ResyncPeriod)
	defer resync.Stop()
	var retry clock.Timer // nil until a sync fails
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	retried := func() <-chan time.Time {
		if retry == nil {
			return nil
		}
		return retry.C()
	}
	backoff := time.Duration(0)
	full := true
	waitingFor := waitingError("")
	n.poke() // the first sync
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.changed:
		case <-resync.C():
			full = true
		case <-retried():
		}
		err := n.sync(ctx, full)
		var w waitingError
		if errors.As(err, &w) {
			// The Node's next change wakes the runner: no retries.
			if w != waitingFor {
				logger.Info("Waiting", "for", string(w))
				waitingFor = w
			}
			full = true
			continue
		}
		waitingFor = ""
		if err != nil {
			backoff = min(max(2*backoff, 100*time.Millisecond), maxBackoff, n.cfg.ResyncPeriod)
			logger.Error(err, "Sync failed; retrying", "after", backoff)
			if retry == nil {
				retry = n.cfg.Clock.NewTimer(backoff)
			} else {
				retry.Reset(backoff)
			}
			full = true
			continue
		}
		backoff, full = 0, false
		select {
		case <-n.ready:
		default:
			close(n.ready)
		}
	}
}

// sync makes the kernel match the Node objects. full rewrites the nft table
// even when its rules did not change (someone may have removed it).
func (n *NodeNet) sync(ctx context.Context, full bool) error {
	n.warnings = map[string]string{}
	defer func() { n.warned = n.warnings }()
	nodes, err := n.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	var self *corev1.Node
	for _, node := range nodes {
		if node.Name == n.cfg.NodeName {
			self = node
		}
	}
	if self == nil {
		return waitingError(fmt.Sprintf("node %s to be registered", n.cfg.NodeName))
	}
	if err := n.cfg.Sysctl.Set("net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("enabling ip_forward: %w", err)
	}
	ownCIDR := podCIDR(self)
	if ownCIDR.IsValid() && !contains(n.cfg.ClusterCIDR, ownCIDR) {
		reason := fmt.Sprintf("its podCIDR %s is outside the cluster CIDR %s: its pods' traffic leaving the cluster is not masqueraded; is --cluster-cidr the server's?", ownCIDR, n.cfg.ClusterCIDR)
		if n.warn(n.cfg.NodeName, reason) {
			klog.FromContext(ctx).WithName("nodenet").Error(nil, "Pod CIDR outside the cluster CIDR", "node", n.cfg.NodeName, "reason", reason)
		}
	}
	if err := n.syncMasquerade(ctx, ownCIDR, full); err != nil {
		return err
	}
	peers := n.peers(ctx, nodes, ownCIDR)
	// A failed publish (the API server away) holds back no route: the
	// cache still knows the other nodes.
	var routes []netlink.Route
	var publishErr error
	switch n.cfg.Backend {
	case HostGW:
		if err := n.deleteVXLAN(); err != nil {
			return err
		}
		publishErr = n.publish(ctx, self, nil)
		routes = n.hostGWRoutes(ctx, peers)
	case VXLAN:
		if !ownCIDR.IsValid() {
			return waitingError(fmt.Sprintf("node %s to get a podCIDR, the VXLAN device's address", n.cfg.NodeName))
		}
		dev, err := n.ensureVXLAN(ownCIDR)
		if err != nil {
			return err
		}
		publishErr = n.publish(ctx, self, dev.Attrs().HardwareAddr)
		if err := n.syncNeighbours(dev, peers); err != nil {
			return errors.Join(publishErr, err)
		}
		routes = vxlanRoutes(dev, peers)
	}
	return errors.Join(publishErr, n.syncRoutes(routes))
}

// waitingError is a sync that cannot be done until a Node changes: this
// node is not registered yet, or has no podCIDR yet.
type waitingError string

func (e waitingError) Error() string { return "waiting for " + string(e) }

// Cleanup removes nodenet's routes, VXLAN device and nft table from the
// node; call it after Run has returned. ip_forward and the Node's
// annotations stay.
func (n *NodeNet) Cleanup(ctx context.Context) error {
	var errs []error
	if err := n.syncRoutes(nil); err != nil {
		errs = append(errs, err)
	}
	if err := n.deleteVXLAN(); err != nil {
		errs = append(errs, err)
	}
	if err := n.deleteMasquerade(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
