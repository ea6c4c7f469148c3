package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Name is the controller's name, as upstream's; Component is upstream's
// event source name for it.
const (
	Name      = "node-lifecycle-controller"
	Component = "node-controller"
)

// Defaults, as upstream's kube-controller-manager flags.
const (
	DefaultNodeMonitorGracePeriod = 40 * time.Second
	DefaultNodeMonitorPeriod      = 5 * time.Second
	DefaultNodeStartupGracePeriod = time.Minute
)

// Config wires the controller.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	// Clock measures grace periods and toleration seconds.
	Clock clock.PassiveClock
	// NodeMonitorGracePeriod (--node-monitor-grace-period) defaults to
	// 40s.
	NodeMonitorGracePeriod time.Duration
	// NodeMonitorPeriod (--node-monitor-period) is how often nodes are
	// checked; default 5s.
	NodeMonitorPeriod time.Duration
	// NodeStartupGracePeriod (--node-startup-grace-period) is the grace
	// period of a node whose kubelet never posted a Ready condition;
	// default 1m.
	NodeStartupGracePeriod time.Duration
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller watches node health, taints and evicts.
type Controller struct {
	client  kubernetes.Interface
	rec     record.EventRecorder
	clock   clock.PassiveClock
	grace   time.Duration
	startup time.Duration
	period  time.Duration
	nodes   corelisters.NodeLister
	leases  coordinationlisters.LeaseLister
	pods    corelisters.PodLister
	podsIdx cache.Indexer
	synced  []cache.InformerSynced

	logger *slog.Logger
	queue  workqueue.TypedRateLimitingInterface[string]

	// health is what the controller last saw of each node's kubelet;
	// only the monitor loop touches it, so it needs no lock.
	health map[string]*nodeHealth
}

type nodeHealth struct {
	// probe is when, on the controller's clock, a renewal was last seen.
	probe         time.Time
	leaseRenew    time.Time
	readyBeat     time.Time
	lastReadyTrue bool
}

const podsByNode = "nodeName"

// New validates cfg and registers the informers; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil || cfg.Recorder == nil {
		return nil, errors.New("nodelifecycle: Client, Informers and Recorder are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.NodeMonitorGracePeriod <= 0 {
		cfg.NodeMonitorGracePeriod = DefaultNodeMonitorGracePeriod
	}
	if cfg.NodeMonitorPeriod <= 0 {
		cfg.NodeMonitorPeriod = DefaultNodeMonitorPeriod
	}
	if cfg.NodeStartupGracePeriod <= 0 {
		cfg.NodeStartupGracePeriod = DefaultNodeStartupGracePeriod
	}
	core := cfg.Informers.Core().V1()
	leases := cfg.Informers.Coordination().V1().Leases()
	podInf := core.Pods().Informer()
	// Index pods by node; a shared informer that is already running
	// refuses new indexers, which New's contract rules out.
	if _, ok := podInf.GetIndexer().GetIndexers()[podsByNode]; !ok {
		if err := podInf.AddIndexers(cache.Indexers{podsByNode: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
				return []string{p.Spec.NodeName}, nil
			}
			return nil, nil
		}}); err != nil {
			return nil, fmt.Errorf("nodelifecycle: indexing pods by node: %w", err)
		}
	}
	return &Controller{
		client: cfg.Client, rec: cfg.Recorder, clock: cfg.Clock,
		grace: cfg.NodeMonitorGracePeriod, startup: cfg.NodeStartupGracePeriod, period: cfg.NodeMonitorPeriod,
		nodes:   core.Nodes().Lister(),
		leases:  leases.Lister(),
		pods:    core.Pods().Lister(),
		podsIdx: podInf.GetIndexer(),
		synced:  []cache.InformerSynced{core.Nodes().Informer().HasSynced, leases.Informer().HasSynced, podInf.HasSynced},
		health:  map[string]*nodeHealth{},
		logger:  cfg.Logger,
		queue:   workloop.NewQueue[string]("nodelifecycle", nil),
	}, nil
}

// passKey is the one key of the controller's queue: each sync is one
// pass over every node, and asks for the next one a NodeMonitorPeriod
// later.
const passKey = "nodes"

// Run checks every node each NodeMonitorPeriod until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	c.queue.Add(passKey)
	// One worker: health is the monitor pass's alone.
	return workloop.Loop[string]{Logger: c.logger, KeyKind: "pass", Queue: c.queue, Synced: c.synced, Sync: c.pass}.Run(ctx)
}

// pass runs one monitor pass; an incomplete one is logged and the next
// pass retries it.
func (c *Controller) pass(ctx context.Context, _ string) error {
	if err := c.monitor(ctx); err != nil && ctx.Err() == nil {
		workloop.Logger(ctx).Warn("pass incomplete, next pass retries", "err", err)
	}
	return workloop.RequeueAfter(c.period)
}

// monitor is one pass: health, taints, pods, for every node.
func (c *Controller) monitor(ctx context.Context) error {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	for _, n := range nodes {
		seen[n.Name] = true
		node, err := c.checkHealth(ctx, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if node, err = c.reconcileTaints(ctx, node); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.reconcilePods(ctx, node); err != nil {
			errs = append(errs, err)
		}
	}
	for name := range c.health {
		if !seen[name] {
			delete(c.health, name)
			// As upstream, the reference names the node by name only.
			ref := &corev1.ObjectReference{Kind: "Node", Name: name, UID: types.UID(name)}
			c.rec.Eventf(ref, corev1.EventTypeNormal, "RemovingNode", "Node %s event: Removing Node %s from Controller", name, name)
		}
	}
	return errors.Join(errs...)
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// checkHealth updates what is known of the kubelet and, past the grace
// period, sets the node's conditions to Unknown. It returns the node as
// stored afterwards.
func (c *Controller) checkHealth(ctx context.Context, node *corev1.Node) (*corev1.Node, error) {
	now := c.clock.Now()
	h := c.health[node.Name]
	if h == nil {
		h = &nodeHealth{probe: now, lastReadyTrue: isReady(node)}
		c.health[node.Name] = h
		c.rec.Eventf(node, corev1.EventTypeNormal, "RegisteredNode", "Node %s event: Registered Node %s in Controller", node.Name, node.Name)
	}
	if ready := readyCondition(node); ready != nil && ready.LastHeartbeatTime.Time.After(h.readyBeat) {
		h.readyBeat, h.probe = ready.LastHeartbeatTime.Time, now
	}
	if lease, err := c.leases.Leases(corev1.NamespaceNodeLease).Get(node.Name); err == nil && lease.Spec.RenewTime != nil &&
		lease.Spec.RenewTime.Time.After(h.leaseRenew) {
		h.leaseRenew, h.probe = lease.Spec.RenewTime.Time, now
	}
	grace := c.grace
	if readyCondition(node) == nil {
		grace = c.startup
	}
	if now.Sub(h.probe) > grace {
		upd := unknownStatus(node, metav1.NewTime(now))
		if !apiequality.Semantic.DeepEqual(upd.Status, node.Status) {
			stored, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
			if err != nil {
				return nil, fmt.Errorf("setting node %s conditions to Unknown: %w", node.Name, err)
			}
			workloop.Logger(ctx).Info("node stopped posting status", "node", node.Name, "lastSeen", h.probe)
			node = stored
		}
	}
	readyNow := isReady(node)
	if h.lastReadyTrue && !readyNow {
		c.rec.Eventf(node, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", node.Name)
	}
	h.lastReadyTrue = readyNow
	return node, nil
}

func isReady(n *corev1.Node) bool {
	r := readyCondition(n)
	return r != nil && r.Status == corev1.ConditionTrue
}

// unknownStatus is node with every condition Unknown, as upstream writes
// it when the kubelet stopped posting (or never posted) status.
func unknownStatus(node *corev1.Node, now metav1.Time) *corev1.Node {
	upd := node.DeepCopy()
	for _, t := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		if !slices.ContainsFunc(upd.Status.Conditions, func(x corev1.NodeCondition) bool { return x.Type == t }) {
			upd.Status.Conditions = append(upd.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown, Reason: "NodeStatusNeverUpdated",
				Message: "Kubelet never posted node status.", LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: now,
			})
		}
	}
	for i := range upd.Status.Conditions {
		cond := &upd.Status.Conditions[i]
		if cond.Status != corev1.ConditionUnknown {
			cond.Status, cond.Reason, cond.Message, cond.LastTransitionTime =
				corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", now
		}
	}
	return upd
}

// conditionTaints are the taints this controller owns, as upstream's
// TaintNodesByCondition and taint-based eviction.
var conditionTaints = []string{
	corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable, corev1.TaintNodeUnschedulable,
	corev1.TaintNodeMemoryPressure, corev1.TaintNodeDiskPressure, corev1.TaintNodePIDPressure,
	corev1.TaintNodeNetworkUnavailable,
}

// wantTaints are the taints node's conditions call for: not-ready or
// unreachable (NoSchedule and NoExecute) from Ready, NoSchedule taints
// for pressure, an unavailable network and spec.unschedulable.
func wantTaints(node *corev1.Node) []corev1.Taint {
	var out []corev1.Taint
	both := func(key string) {
		out = append(out, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule}, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute})
	}
	if ready := readyCondition(node); ready != nil {
		switch ready.Status {
		case corev1.ConditionFalse:
			both(corev1.TaintNodeNotReady)
		case corev1.ConditionUnknown:
			both(corev1.TaintNodeUnreachable)
		}
	}
	byCondition := map[corev1.NodeConditionType]string{
		corev1.NodeMemoryPressure:     corev1.TaintNodeMemoryPressure,
		corev1.NodeDiskPressure:       corev1.TaintNodeDiskPressure,
		corev1.NodePIDPressure:        corev1.TaintNodePIDPressure,
		corev1.NodeNetworkUnavailable: corev1.TaintNodeNetworkUnavailable,
	}
	for _, c := range node.Status.Conditions {
		if key, ok := byCondition[c.Type]; ok && c.Status == corev1.ConditionTrue {
			out = append(out, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	if node.Spec.Unschedulable {
		out = append(out, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	return out
}

// reconcileTaints makes the node carry exactly the condition taints its
// conditions call for, keeping every other taint and the time a
// NoExecute taint was first added.
func (c *Controller) reconcileTaints(ctx context.Context, node *corev1.Node) (*corev1.Node, error) {
	want := wantTaints(node)
	wanted := func(t corev1.Taint) bool {
		return slices.ContainsFunc(want, func(w corev1.Taint) bool { return w.Key == t.Key && w.Effect == t.Effect })
	}
	var taints []corev1.Taint
	for _, t := range node.Spec.Taints {
		if !slices.Contains(conditionTaints, t.Key) || wanted(t) {
			taints = append(taints, t)
		}
	}
	now := metav1.NewTime(c.clock.Now())
	for _, w := range want {
		if slices.ContainsFunc(taints, func(t corev1.Taint) bool { return t.Key == w.Key && t.Effect == w.Effect }) {
			continue
		}
		if w.Effect == corev1.TaintEffectNoExecute {
			w.TimeAdded = &now
		}
		taints = append(taints, w)
	}
	if apiequality.Semantic.DeepEqual(taints, node.Spec.Taints) {
		return node, nil
	}
	upd := node.DeepCopy()
	upd.Spec.Taints = taints
	stored, err := c.client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating taints of node %s: %w", node.Name, err)
	}
	return stored, nil
}

// reconcilePods marks the pods of a node that is not Ready as not ready,
// and evicts those whose tolerations of its NoExecute taints ran out.
func (c *Controller) reconcilePods(ctx context.Context, node *corev1.Node) error {
	ready := readyCondition(node)
	notReady := ready != nil && ready.Status != corev1.ConditionTrue
	var noExecute []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			noExecute = append(noExecute, t)
		}
	}
	if !notReady && len(noExecute) == 0 {
		return nil
	}
	objs, err := c.podsIdx.ByIndex(podsByNode, node.Name)
	if err != nil {
		return err
	}
	var errs []error
	now := c.clock.Now()
	for _, obj := range objs {
		pod := obj.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			continue
		}
		if len(noExecute) > 0 {
			if due, ok := evictionTime(pod, noExecute); ok && !now.Before(due) {
				if err := c.evict(ctx, pod); err != nil {
					errs = append(errs, err)
				}
				continue
			}
		}
		if notReady {
			if err := c.markNotReady(ctx, pod); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// evictionTime is when a pod must leave a node with the given NoExecute
// taints, as upstream's taint manager decides: at once when one is not
// tolerated, else the shortest tolerationSeconds among the tolerations
// used after the taint was added; ok is false when it may stay forever.
func evictionTime(pod *corev1.Pod, taints []corev1.Taint) (due time.Time, ok bool) {
	var added time.Time
	var shortest *int64
	for _, taint := range taints {
		tolerated := false
		for i := range pod.Spec.Tolerations {
			tol := &pod.Spec.Tolerations[i]
			if !tol.ToleratesTaint(logr.Discard(), &taint, false) {
				continue
			}
			tolerated = true
			if s := tol.TolerationSeconds; s != nil && (shortest == nil || *s < *shortest) {
				shortest = s
			}
		}
		if !tolerated {
			return time.Time{}, true
		}
		if taint.TimeAdded != nil && (added.IsZero() || taint.TimeAdded.Time.Before(added)) {
			added = taint.TimeAdded.Time
		}
	}
	if shortest == nil {
		return time.Time{}, false
	}
	return added.Add(time.Duration(max(*shortest, 0)) * time.Second), true
}

func (c *Controller) evict(ctx context.Context, pod *corev1.Pod) error {
	c.rec.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	workloop.Logger(ctx).Info("evicting pod", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName)
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// markNotReady sets the pod's Ready condition to False, as upstream's
// MarkPodsNotReady.
func (c *Controller) markNotReady(ctx context.Context, pod *corev1.Pod) error {
	i := slices.IndexFunc(pod.Status.Conditions, func(x corev1.PodCondition) bool { return x.Type == corev1.PodReady })
	if i < 0 || pod.Status.Conditions[i].Status == corev1.ConditionFalse {
		return nil
	}
	upd := pod.DeepCopy()
	upd.Status.Conditions[i].Status = corev1.ConditionFalse
	upd.Status.Conditions[i].LastTransitionTime = metav1.NewTime(c.clock.Now())
	_, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err == nil {
		c.rec.Eventf(pod, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
	}
	return err
}
