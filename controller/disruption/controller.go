package disruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Name is the controller's name, as upstream's; Component is the name
// events are recorded under, as upstream.
const (
	Name      = "disruption-controller"
	Component = "controllermanager"
)

// DeletionTimeout is how long an evicted pod stays in a budget's
// disruptedPods (and out of its healthy count) while it is not being
// deleted, as upstream.
const DeletionTimeout = 2 * time.Minute

// Config wires the controller.
type Config struct {
	// Client writes budget status. Required.
	Client kubernetes.Interface
	// Informers is the shared factory of the pod, budget and workload
	// informers; whoever owns it starts it. Required.
	Informers informers.SharedInformerFactory
	// Recorder records the controller's events. Required.
	Recorder record.EventRecorder
	// Clock decides when disruptedPods entries expire; nil is the real
	// clock.
	Clock clock.PassiveClock
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller keeps PodDisruptionBudget status. Create it with New and
// start it with Run.
type Controller struct {
	logger   *slog.Logger
	workers  int
	client   kubernetes.Interface
	recorder record.EventRecorder
	clock    clock.PassiveClock

	pdbs         policylisters.PodDisruptionBudgetLister
	pods         corelisters.PodLister
	replicaSets  appslisters.ReplicaSetLister
	deployments  appslisters.DeploymentLister
	statefulSets appslisters.StatefulSetLister
	synced       []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[string]
	// staleQueue holds pods whose DisruptionTarget condition is or will
	// be stale (stale.go).
	staleQueue workqueue.TypedRateLimitingInterface[string]
}

// New validates cfg and registers the event handlers; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil || cfg.Recorder == nil {
		return nil, errors.New("disruption: Client, Informers and Recorder are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	pdbs := cfg.Informers.Policy().V1().PodDisruptionBudgets()
	pods := cfg.Informers.Core().V1().Pods()
	rs := cfg.Informers.Apps().V1().ReplicaSets()
	deploy := cfg.Informers.Apps().V1().Deployments()
	sts := cfg.Informers.Apps().V1().StatefulSets()
	c := &Controller{
		logger: cfg.Logger, workers: cfg.Workers,
		client: cfg.Client, recorder: cfg.Recorder, clock: cfg.Clock,
		pdbs: pdbs.Lister(), pods: pods.Lister(),
		replicaSets: rs.Lister(), deployments: deploy.Lister(), statefulSets: sts.Lister(),
		synced: []cache.InformerSynced{pdbs.Informer().HasSynced, pods.Informer().HasSynced,
			rs.Informer().HasSynced, deploy.Informer().HasSynced, sts.Informer().HasSynced},
		queue:      workloop.NewQueue[string]("disruption", nil),
		staleQueue: workloop.NewQueue[string]("disruption_recheck", nil),
	}
	onBudget := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := pdbs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onBudget, UpdateFunc: func(_, obj any) { onBudget(obj) }, DeleteFunc: onBudget,
	}); err != nil {
		return nil, err
	}
	onPod := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if pod, ok := obj.(*corev1.Pod); ok {
			c.enqueueBudgetsOf(pod)
		}
	}
	onLivePod := func(obj any) {
		onPod(obj)
		if pod, ok := obj.(*corev1.Pod); ok {
			c.watchStaleDisruption(pod)
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onLivePod,
		UpdateFunc: func(old, obj any) {
			// A pod whose labels changed may have left a budget.
			onPod(old)
			onLivePod(obj)
		},
		DeleteFunc: onPod,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// enqueueBudgetsOf queues every budget selecting pod. Upstream syncs only
// the first and warns; the eviction refuses such pods anyway, but the
// other budgets' status should not go stale.
func (c *Controller) enqueueBudgetsOf(pod *corev1.Pod) {
	budgets, err := c.pdbs.GetPodPodDisruptionBudgets(pod)
	if err != nil {
		return // none
	}
	if len(budgets) > 1 {
		c.recorder.Eventf(pod, corev1.EventTypeWarning, "MultiplePodDisruptionBudgets",
			"Pod %q/%q matches multiple PodDisruptionBudgets.  Chose %q arbitrarily.", pod.Namespace, pod.Name, budgets[0].Name)
	}
	for _, pdb := range budgets {
		if key, err := cache.MetaNamespaceKeyFunc(pdb); err == nil {
			c.queue.Add(key)
		}
	}
}

// Run works the budget and stale-condition queues until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	var staleErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		staleErr = workloop.Loop[string]{Logger: c.logger, Workers: c.workers, KeyKind: "pod",
			Queue: c.staleQueue, Synced: c.synced, Sync: c.syncStaleDisruption}.Run(ctx)
	})
	err := workloop.Loop[string]{Logger: c.logger, Workers: c.workers, KeyKind: "poddisruptionbudget",
		Queue: c.queue, Synced: c.synced, Sync: c.sync}.Run(ctx)
	wg.Wait()
	return errors.Join(err, staleErr)
}

// sync brings one budget's status up to date. A failure other than a
// conflict sets the budget to allow no disruption (SyncFailed), as
// upstream's failSafe, so evictions stop rather than trust old numbers.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pdb, err := c.pdbs.PodDisruptionBudgets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	err = c.trySync(ctx, pdb)
	if err == nil || apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return err
	}
	return c.failSafe(ctx, pdb, err)
}

func (c *Controller) trySync(ctx context.Context, pdb *policyv1.PodDisruptionBudget) error {
	pods, err := c.podsOf(pdb)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "NoPods", "Failed to get pods: %v", err)
		return err
	}
	if len(pods) == 0 {
		c.recorder.Event(pdb, corev1.EventTypeNormal, "NoPods", "No matching pods found")
	}
	expected, desiredHealthy, unmanaged, err := c.expectedPodCount(pdb, pods)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "CalculateExpectedPodCountFailed", "Failed to calculate the number of expected pods: %v", err)
		return err
	}
	if len(unmanaged) > 0 {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "UnmanagedPods", "Pods selected by this PodDisruptionBudget (selector: %v) were found "+
			"to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. "+
			"To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", pdb.Spec.Selector)
	}
	now := c.clock.Now()
	disrupted, recheck := c.disruptedPods(pdb, pods, now)
	err = c.updateStatus(ctx, pdb, countHealthy(pods, disrupted, now), desiredHealthy, expected, disrupted)
	if err == nil && recheck != nil {
		// Come back when the earliest disruption expires.
		if key, kerr := cache.MetaNamespaceKeyFunc(pdb); kerr == nil {
			c.queue.AddAfter(key, recheck.Sub(now))
		}
	}
	return err
}

// podsOf lists the pods the budget selects: an empty selector selects
// every pod of the namespace, a null one none.
func (c *Controller) podsOf(pdb *policyv1.PodDisruptionBudget) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return nil, err
	}
	return c.pods.Pods(pdb.Namespace).List(sel)
}

// disruptedPods keeps the entries of pdb's disruptedPods whose pod still
// exists, is not being deleted and was evicted less than DeletionTimeout
// ago; recheck is when the earliest of them expires.
func (c *Controller) disruptedPods(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, now time.Time) (map[string]metav1.Time, *time.Time) {
	result := map[string]metav1.Time{}
	var recheck *time.Time
	if pdb.Status.DisruptedPods == nil {
		return result, nil
	}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		evicted, ok := pdb.Status.DisruptedPods[pod.Name]
		if !ok {
			continue
		}
		expires := evicted.Add(DeletionTimeout)
		if expires.Before(now) {
			c.recorder.Eventf(pod, corev1.EventTypeWarning, "NotDeleted", "Pod was expected by PDB %s/%s to be deleted but it wasn't", pdb.Namespace, pdb.Name)
			continue
		}
		if recheck == nil || expires.Before(*recheck) {
			recheck = &expires
		}
		result[pod.Name] = evicted
	}
	return result, recheck
}

// countHealthy counts the ready pods that are neither being deleted nor
// recently evicted.
func countHealthy(pods []*corev1.Pod, disrupted map[string]metav1.Time, now time.Time) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if t, ok := disrupted[pod.Name]; ok && t.Add(DeletionTimeout).After(now) {
			continue
		}
		if podReady(pod) {
			n++
		}
	}
	return n
}

func podReady(pod *corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// updateStatus writes the computed status unless it is already there.
// A budget that expects no pods allows no disruption: its first pods may
// appear before this controller has seen them.
func (c *Controller) updateStatus(ctx context.Context, pdb *policyv1.PodDisruptionBudget, currentHealthy, desiredHealthy, expected int32, disrupted map[string]metav1.Time) error {
	allowed := currentHealthy - desiredHealthy
	if expected <= 0 || allowed <= 0 {
		allowed = 0
	}
	st := pdb.Status
	if st.CurrentHealthy == currentHealthy && st.DesiredHealthy == desiredHealthy && st.ExpectedPods == expected &&
		st.DisruptionsAllowed == allowed && apiequality.Semantic.DeepEqual(st.DisruptedPods, disrupted) &&
		st.ObservedGeneration == pdb.Generation && conditionUpToDate(pdb) {
		return nil
	}
	upd := pdb.DeepCopy()
	upd.Status = policyv1.PodDisruptionBudgetStatus{
		CurrentHealthy: currentHealthy, DesiredHealthy: desiredHealthy, ExpectedPods: expected,
		DisruptionsAllowed: allowed, DisruptedPods: disrupted, ObservedGeneration: pdb.Generation,
		Conditions: upd.Status.Conditions,
	}
	setCondition(upd, "")
	_, err := c.client.PolicyV1().PodDisruptionBudgets(upd.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return err
}

// failSafe allows no disruption, with the sync's error as the reason.
func (c *Controller) failSafe(ctx context.Context, pdb *policyv1.PodDisruptionBudget, syncErr error) error {
	upd := pdb.DeepCopy()
	upd.Status.DisruptionsAllowed = 0
	setCondition(upd, syncErr.Error())
	if _, err := c.client.PolicyV1().PodDisruptionBudgets(upd.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return err
	}
	return fmt.Errorf("disruption: %s/%s: %w", pdb.Namespace, pdb.Name, syncErr)
}

// setCondition sets DisruptionAllowed from disruptionsAllowed, or to
// SyncFailed with failure as its message.
func setCondition(pdb *policyv1.PodDisruptionBudget, failure string) {
	cond := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse,
		Reason: policyv1.InsufficientPodsReason, ObservedGeneration: pdb.Status.ObservedGeneration}
	switch {
	case failure != "":
		cond.Reason, cond.Message = policyv1.SyncFailedReason, failure
	case pdb.Status.DisruptionsAllowed > 0:
		cond.Status, cond.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
	}
	if pdb.Status.Conditions == nil {
		pdb.Status.Conditions = []metav1.Condition{}
	}
	apimeta.SetStatusCondition(&pdb.Status.Conditions, cond)
}

// conditionUpToDate is upstream's ConditionsAreUpToDate.
func conditionUpToDate(pdb *policyv1.PodDisruptionBudget) bool {
	cond := apimeta.FindStatusCondition(pdb.Status.Conditions, policyv1.DisruptionAllowedCondition)
	if cond == nil || pdb.Status.ObservedGeneration != pdb.Generation {
		return false
	}
	if pdb.Status.DisruptionsAllowed > 0 {
		return cond.Status == metav1.ConditionTrue && cond.Reason == policyv1.SufficientPodsReason
	}
	return cond.Status == metav1.ConditionFalse && cond.Reason == policyv1.InsufficientPodsReason
}
