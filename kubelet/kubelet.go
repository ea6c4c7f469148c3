package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/tinykube/tinykube/kubelet/containers"
	"github.com/tinykube/tinykube/kubelet/images"
	"github.com/tinykube/tinykube/kubelet/sandbox"
	"github.com/tinykube/tinykube/kubelet/supervisor"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Version is the kubelet version the node reports.
const Version = "v1.37.2+tinykube"

// Config configures a Kubelet.
type Config struct {
	// Client talks to the API server. Required.
	Client kubernetes.Interface
	// EventClient writes the kubelet's Events; default Client. A client
	// of its own keeps a burst of events (a node starting many pods) from
	// using up the rate limit that status updates need, as upstream's
	// kubelet has for events (eventRecordQPS).
	EventClient kubernetes.Interface
	// NodeName is the Node this kubelet registers. Required.
	NodeName string
	// NodeIP is the node's InternalIP. Required.
	NodeIP netip.Addr
	// DataDir holds the node's state under DataDir/agent. Required.
	DataDir string
	// ContainerRuntimeEndpoint is the socket of the containerd that runs
	// the pods: an existing one, or tinykube's own, which its caller
	// supervises (see NewContainerd) and starts first. Required unless
	// Runtime is set.
	ContainerRuntimeEndpoint string
	// Runtime and Images, set together, run the pods' containers and hold
	// their images in place of containerd at ContainerRuntimeEndpoint: a
	// fake in tests, another runtime later. Runtime must call
	// Kubelet.ContainerExited whenever a container exits.
	Runtime ContainerRuntime
	Images  ImageService
	// Network, when set, gives pods their sandboxes in place of the CNI
	// bridge on the node's pod CIDR.
	Network PodNetwork
	// PodCIDR is the node's pod range; when unset the kubelet waits for
	// the Node's spec.podCIDR.
	PodCIDR netip.Prefix
	// Bridge is the pods' Linux bridge; default "tinykube0".
	Bridge string
	// IPMasq masquerades pod traffic leaving the pod network. Off when
	// the node's routing (nodenet) masquerades only what leaves the
	// cluster, so pods on other nodes see pod addresses.
	IPMasq bool
	// MTU of the pod bridge and veths; 0 lets the CNI plugin choose. An
	// overlay's encapsulation needs a smaller one (VXLAN: 1450).
	MTU int
	// CNIPluginDirs are searched for CNI plugins.
	CNIPluginDirs []string
	// LogDir holds container logs; default /var/log/pods.
	LogDir string
	// ResolvConf is the node's resolver configuration: what Default
	// pods get and where ClusterFirst pods' search list continues;
	// default /etc/resolv.conf, or systemd-resolved's list of upstream
	// servers when /etc/resolv.conf names only its loopback stub.
	ResolvConf string
	// ClusterDNS are the cluster DNS server addresses ClusterFirst pods
	// use. Without any, ClusterFirst pods fall back to Default with a
	// MissingClusterDNS event, as upstream.
	ClusterDNS []netip.Addr
	// ClusterDomain is the cluster's DNS domain; default "cluster.local".
	ClusterDomain string
	// Workers is how many pods are synced at once; default 16.
	Workers int
	// NodeStatusUpdateFrequency is how often node status is posted;
	// default 10s. The Lease is renewed at the same period.
	NodeStatusUpdateFrequency time.Duration
	// ResyncPeriod is how often every pod is reconciled without an event;
	// default 10s.
	ResyncPeriod time.Duration
	// RegistriesFile configures registry mirrors, plain-HTTP endpoints and
	// credentials in k3s's registries.yaml format; default
	// /etc/tinykube/registries.yaml (a missing file is fine).
	RegistriesFile string
	// ServingCert is the kubelet API's HTTPS certificate; nil serves no
	// API (no logs, exec or port-forward through the API server).
	ServingCert *tls.Certificate
	// ClientCAs verifies clients of the kubelet API; required with
	// ServingCert.
	ClientCAs *x509.CertPool
	// Authorizer decides what callers of the kubelet API may do
	// (upstream's --authorization-mode); default Webhook: a
	// SubjectAccessReview through Client, see NewWebhookAuthorizer.
	Authorizer Authorizer
	// ListenAddress is the kubelet API's address; default ":10250". Its
	// port is advertised in the Node's daemonEndpoints.
	ListenAddress string
	// Clock is injected for tests; default the real clock.
	Clock clock.WithTicker
	// Logger is where the kubelet logs; nil discards.
	Logger *slog.Logger
}

// Kubelet runs the pods bound to one node.
type Kubelet struct {
	cfg    Config
	log    *slog.Logger
	client kubernetes.Interface
	clock  clock.WithTicker

	ready     chan struct{}
	readyOnce sync.Once

	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	dns         *dnsConfigurer

	// Set in Run.
	runtime    ContainerRuntime
	images     ImageService
	network    PodNetwork
	podCIDR    netip.Prefix
	pods       cache.SharedIndexInformer
	services   cache.SharedIndexInformer // every namespace's, for pods' env
	queue      workqueue.TypedRateLimitingInterface[string]
	probes     *probeManager
	port       int32 // the kubelet API's port
	registries *images.Registries

	mu      sync.Mutex
	backoff map[string]*backoffEntry // by podUID/container
	started map[string]time.Time     // pod start times by UID
	// deleted holds the final state of pods the informer saw deleted,
	// until their cleanup is done.
	deleted map[string]*corev1.Pod
	// lastStatus is the status last written per pod UID.
	lastStatus map[string]corev1.PodStatus
	// postStart cancels the postStart hook running for a pod UID (its
	// syncs, and so its hooks, run one at a time).
	postStart map[string]context.CancelFunc
}

// New validates cfg and fills defaults. It starts nothing.
func New(cfg Config) (*Kubelet, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("Client is required"))
	}
	if cfg.NodeName == "" {
		errs = append(errs, errors.New("NodeName is required"))
	}
	if !cfg.NodeIP.IsValid() {
		errs = append(errs, errors.New("NodeIP is required"))
	}
	if cfg.DataDir == "" {
		errs = append(errs, errors.New("DataDir is required"))
	}
	if (cfg.Runtime == nil) != (cfg.Images == nil) {
		errs = append(errs, errors.New("Runtime and Images go together"))
	}
	if cfg.ContainerRuntimeEndpoint == "" && cfg.Runtime == nil {
		errs = append(errs, errors.New("ContainerRuntimeEndpoint or Runtime is required"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("kubelet: %w", errors.Join(errs...))
	}
	if cfg.Runtime == nil {
		if err := supervisor.CheckHost(false); err != nil {
			return nil, err
		}
	}
	if cfg.Network == nil {
		dirs := cfg.CNIPluginDirs
		if len(dirs) == 0 {
			dirs = sandbox.DefaultPluginDirs
		}
		if err := sandbox.CheckPlugins(dirs); err != nil {
			return nil, err
		}
	}
	if cfg.ServingCert != nil && cfg.ClientCAs == nil {
		return nil, errors.New("kubelet: ClientCAs is required with ServingCert")
	}
	if cfg.RegistriesFile == "" {
		cfg.RegistriesFile = images.DefaultRegistriesFile
	}
	if cfg.ListenAddress == "" {
		cfg.ListenAddress = fmt.Sprintf(":%d", KubeletPort)
	}
	if cfg.LogDir == "" {
		cfg.LogDir = "/var/log/pods"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = nodeResolvConf(cfg.Logger, hostResolvConf, systemdResolvedResolvConf)
	}
	if cfg.EventClient == nil {
		cfg.EventClient = cfg.Client
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.NodeStatusUpdateFrequency <= 0 {
		cfg.NodeStatusUpdateFrequency = 10 * time.Second
	}
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer, _ = NewWebhookAuthorizer(WebhookAuthorizerConfig{Client: cfg.Client, Clock: cfg.Clock})
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	broadcaster, recorder := newRecorder(cfg.NodeName)
	return &Kubelet{
		cfg:         cfg,
		log:         cfg.Logger,
		client:      cfg.Client,
		clock:       cfg.Clock,
		ready:       make(chan struct{}),
		broadcaster: broadcaster,
		recorder:    recorder,
		dns: &dnsConfigurer{
			log:           cfg.Logger,
			clusterDNS:    cfg.ClusterDNS,
			clusterDomain: cfg.ClusterDomain,
			resolvConf:    cfg.ResolvConf,
			nodeIPs:       []netip.Addr{cfg.NodeIP},
			recorder:      recorder,
			nodeRef:       nodeRef(cfg.NodeName),
		},
		backoff: map[string]*backoffEntry{},
		started: map[string]time.Time{},

		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "pods", Clock: cfg.Clock}),

		lastStatus: map[string]corev1.PodStatus{},
		deleted:    map[string]*corev1.Pod{},
		postStart:  map[string]context.CancelFunc{},
	}, nil
}

// Ready is closed once the node is registered and pods are being synced.
func (k *Kubelet) Ready() <-chan struct{} { return k.ready }

// Run connects to containerd, imports queued image tarballs, registers the
// node and runs pods until ctx ends. Running containers outlive Run: a new
// kubelet re-adopts them.
func (k *Kubelet) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Whatever ends Run ends its goroutines (containerd, the API server,
	// informers) and waits for them.
	defer func() {
		cancel()
		wg.Wait()
	}()

	defer k.queue.ShutDown()
	k.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.cfg.EventClient.CoreV1().Events("")})
	defer k.broadcaster.Shutdown()
	var err error
	if k.registries, err = images.LoadRegistries(k.cfg.RegistriesFile); err != nil {
		return err
	}
	k.runtime, k.images = k.cfg.Runtime, k.cfg.Images
	if k.runtime == nil {
		closeRuntime, err := k.connectContainerd(ctx)
		if err != nil {
			return err
		}
		defer closeRuntime()
	}

	if k.cfg.ServingCert != nil {
		l, err := net.Listen("tcp", k.cfg.ListenAddress)
		if err != nil {
			return fmt.Errorf("API: %w", err)
		}
		k.port = int32(l.Addr().(*net.TCPAddr).Port)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := k.serve(ctx, l); err != nil {
				k.log.Error("kubelet API stopped", "err", err)
			}
		}()
	}
	cidr, err := k.registerNode(ctx)
	if err != nil {
		return err
	}
	k.podCIDR = cidr
	if err := k.renewLease(ctx); err != nil {
		k.log.Warn("creating the node lease", "err", err)
	}
	k.network = k.cfg.Network
	if k.network == nil {
		if k.network, err = sandbox.New(sandbox.Config{
			Dir:        cniDir(k.cfg.DataDir),
			PluginDirs: k.cfg.CNIPluginDirs,
			Bridge:     k.cfg.Bridge,
			PodCIDR:    cidr,
			IPMasq:     k.cfg.IPMasq,
			MTU:        k.cfg.MTU,
		}); err != nil {
			return err
		}
	}

	k.probes = newProbeManager(k)
	defer k.probes.stopAll()

	k.pods = informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.cfg.NodeName).String()
		})).Core().V1().Pods().Informer()
	if err := k.pods.AddIndexers(cache.Indexers{uidIndex: func(obj any) ([]string, error) {
		return []string{string(obj.(*corev1.Pod).UID)}, nil
	}}); err != nil {
		return err
	}
	enqueue := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			k.queue.Add(string(p.UID))
		}
	}
	if _, err := k.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(_, obj any) {
			if p, ok := obj.(*corev1.Pod); ok && p.DeletionTimestamp != nil {
				k.cancelHooks(string(p.UID))
			}
			enqueue(obj)
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				k.mu.Lock()
				k.deleted[string(p.UID)] = p
				k.mu.Unlock()
				k.cancelHooks(string(p.UID))
			}
			enqueue(obj)
		},
	}); err != nil {
		return err
	}
	k.services = informers.NewSharedInformerFactory(k.client, 0).Core().V1().Services().Informer()
	wg.Add(2)
	go func() {
		defer wg.Done()
		k.pods.Run(ctx.Done())
	}()
	go func() {
		defer wg.Done()
		k.services.Run(ctx.Done())
	}()
	// Containers start only once the Services are known: their
	// variables are fixed at start.
	if !cache.WaitForCacheSync(ctx.Done(), k.pods.HasSynced, k.services.HasSynced) {
		return ctx.Err()
	}
	for i := 0; i < k.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k.processNext(ctx) {
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		k.heartbeat(ctx)
	}()
	go func() {
		defer wg.Done()
		k.housekeeping(ctx)
	}()
	k.readyOnce.Do(func() { close(k.ready) })
	k.log.Info("node registered", "node", k.cfg.NodeName, "podCIDR", cidr)
	<-ctx.Done()
	k.queue.ShutDown()
	return nil
}

const uidIndex = "uid"

// ContainerExited tells the kubelet that a container of the pod with UID
// podUID has exited, so the pod is synced at once. The containerd runtime
// calls it itself; a Runtime given in Config must. Safe to call at any
// time, also before Run or after it returned.
func (k *Kubelet) ContainerExited(podUID string) { k.queue.Add(podUID) }

// connectContainerd makes containerd at ContainerRuntimeEndpoint the
// runtime and image store, and imports the node's queued image tarballs
// into it; close releases it.
func (k *Kubelet) connectContainerd(ctx context.Context) (close func(), err error) {
	address := k.cfg.ContainerRuntimeEndpoint
	c, err := client.New(address, client.WithDefaultNamespace(images.Namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	if names, err := images.ImportDir(namespacedContext(ctx), c, ImagesDir(k.cfg.DataDir)); err != nil {
		k.log.Error("importing images", "dir", ImagesDir(k.cfg.DataDir), "err", err)
	} else if len(names) > 0 {
		k.log.Info("imported images", "images", names)
	}
	rt, err := containers.New(containers.Config{
		Logger:      k.log,
		Client:      c,
		Namespace:   images.Namespace,
		Snapshotter: images.Snapshotter,
		FIFODir:     filepath.Join(k.cfg.DataDir, "agent", "fifo"),
		OnExit:      k.ContainerExited,
		Now:         k.clock.Now,
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	k.runtime, k.images = rt, containerdImages{c}
	return func() {
		rt.Close()
		c.Close()
	}, nil
}

// housekeeping enqueues every pod with a sandbox or containers on the node
// and every pod bound to it, now and every ResyncPeriod: pods deleted while
// the kubelet was down get cleaned up, and pods are reconciled without
// events.
func (k *Kubelet) housekeeping(ctx context.Context) {
	t := k.clock.NewTicker(k.cfg.ResyncPeriod)
	defer t.Stop()
	for {
		seen := map[string]bool{}
		for _, obj := range k.pods.GetStore().List() {
			seen[string(obj.(*corev1.Pod).UID)] = true
		}
		if cs, err := k.runtime.List(ctx); err == nil {
			for _, c := range cs {
				seen[c.Pod.UID] = true
			}
		} else if ctx.Err() == nil {
			k.log.Warn("housekeeping", "err", err)
		}
		if uids, err := k.network.List(); err == nil {
			for _, u := range uids {
				seen[u] = true
			}
		}
		for uid := range seen {
			k.queue.Add(uid)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

func (k *Kubelet) processNext(ctx context.Context) bool {
	uid, shutdown := k.queue.Get()
	if shutdown {
		return false
	}
	defer k.queue.Done(uid)
	requeue, err := k.syncPod(ctx, uid)
	switch {
	case err != nil && ctx.Err() == nil:
		k.log.Warn("sync pod failed; will retry", "podUID", uid, "err", err)
		k.queue.AddRateLimited(uid)
	case requeue > 0:
		k.queue.Forget(uid)
		k.queue.AddAfter(uid, requeue)
	default:
		k.queue.Forget(uid)
	}
	return true
}

// podByUID returns the pod with uid from the informer, or nil.
func (k *Kubelet) podByUID(uid string) *corev1.Pod {
	objs, err := k.pods.GetIndexer().ByIndex(uidIndex, uid)
	if err != nil || len(objs) == 0 {
		return nil
	}
	return objs[0].(*corev1.Pod)
}

func (k *Kubelet) podDir(uid string) string { return filepath.Join(podsDir(k.cfg.DataDir), uid) }

func removePodDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
