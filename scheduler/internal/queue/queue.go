package queue

import (
	"container/heap"
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/utils/clock"
)

// Defaults as upstream's.
const (
	DefaultInitialBackoff = 1 * time.Second
	DefaultMaxBackoff     = 10 * time.Second
	// DefaultMaxUnschedulableDuration is how long a pod waits in the
	// unschedulable set without any cluster change before it is retried
	// anyway.
	DefaultMaxUnschedulableDuration = 5 * time.Minute
)

// QueuedPod is a pod in the queue with its scheduling history.
type QueuedPod struct {
	Pod *corev1.Pod
	// Timestamp is when the pod was last added to the queue; it orders pods
	// of equal priority and starts the backoff.
	Timestamp time.Time
	// InitialAttemptTimestamp is when the pod was first popped.
	InitialAttemptTimestamp time.Time
	// Attempts counts scheduling attempts.
	Attempts int

	index int // in whichever heap holds it
}

// Config tunes the queue.
type Config struct {
	Clock                    clock.WithTicker
	InitialBackoff           time.Duration
	MaxBackoff               time.Duration
	MaxUnschedulableDuration time.Duration
}

// Queue is safe for concurrent use.
type Queue struct {
	clock                    clock.WithTicker
	initialBackoff           time.Duration
	maxBackoff               time.Duration
	maxUnschedulableDuration time.Duration

	mu            sync.Mutex
	cond          *sync.Cond
	active        podHeap
	backoff       podHeap
	unschedulable map[types.UID]*QueuedPod
	// inFlight are popped pods not yet Done; deleted marks those removed
	// from the cluster while in flight, so that a failure does not requeue
	// them.
	inFlight map[types.UID]bool
	// schedulingCycle counts Pops; moveRequestCycle is the cycle of the
	// last cluster change, so that a pod that fails in a cycle that saw a
	// change goes to backoff rather than waiting for another change.
	schedulingCycle  int64
	moveRequestCycle int64
	closed           bool
}

// New returns an empty queue.
func New(cfg Config) *Queue {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = DefaultInitialBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxUnschedulableDuration <= 0 {
		cfg.MaxUnschedulableDuration = DefaultMaxUnschedulableDuration
	}
	q := &Queue{
		clock:                    cfg.Clock,
		initialBackoff:           cfg.InitialBackoff,
		maxBackoff:               cfg.MaxBackoff,
		maxUnschedulableDuration: cfg.MaxUnschedulableDuration,
		active:                   podHeap{less: activeLess},
		unschedulable:            map[types.UID]*QueuedPod{},
		inFlight:                 map[types.UID]bool{},
		moveRequestCycle:         -1,
	}
	q.backoff = podHeap{less: q.backoffLess}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func activeLess(a, b *QueuedPod) bool {
	pa, pb := corev1helpers.PodPriority(a.Pod), corev1helpers.PodPriority(b.Pod)
	if pa != pb {
		return pa > pb
	}
	return a.Timestamp.Before(b.Timestamp)
}

func (q *Queue) backoffLess(a, b *QueuedPod) bool {
	return q.backoffExpiry(a).Before(q.backoffExpiry(b))
}

// backoffExpiry is Timestamp + initial * 2^(attempts-1), capped.
func (q *Queue) backoffExpiry(p *QueuedPod) time.Time {
	d := q.initialBackoff
	for i := 1; i < p.Attempts && d < q.maxBackoff; i++ {
		d *= 2
	}
	if d > q.maxBackoff {
		d = q.maxBackoff
	}
	return p.Timestamp.Add(d)
}

// Add queues a new pending pod, or updates it where it already waits.
func (q *Queue) Add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.updateLocked(pod) {
		return
	}
	if q.inFlight[pod.UID] {
		// Being scheduled right now; the outcome decides what happens.
		return
	}
	heap.Push(&q.active, &QueuedPod{Pod: pod, Timestamp: q.clock.Now()})
	q.cond.Broadcast()
}

// Update replaces the pod object wherever it waits. An unschedulable pod
// whose spec or labels changed is retried, since the change may make it fit.
func (q *Queue) Update(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.updateLocked(pod) || q.inFlight[pod.UID] {
		return
	}
	heap.Push(&q.active, &QueuedPod{Pod: pod, Timestamp: q.clock.Now()})
	q.cond.Broadcast()
}

func (q *Queue) updateLocked(pod *corev1.Pod) bool {
	if i := q.active.find(pod.UID); i >= 0 {
		q.active.items[i].Pod = pod
		heap.Fix(&q.active, i)
		return true
	}
	if i := q.backoff.find(pod.UID); i >= 0 {
		q.backoff.items[i].Pod = pod
		return true
	}
	if p, ok := q.unschedulable[pod.UID]; ok {
		old := p.Pod
		p.Pod = pod
		if old.Generation != pod.Generation || !equalLabels(old.Labels, pod.Labels) {
			delete(q.unschedulable, pod.UID)
			q.requeueLocked(p)
		}
		return true
	}
	return false
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Delete drops the pod: it was deleted, or bound by someone else.
func (q *Queue) Delete(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := q.active.find(uid); i >= 0 {
		heap.Remove(&q.active, i)
	}
	if i := q.backoff.find(uid); i >= 0 {
		heap.Remove(&q.backoff, i)
	}
	delete(q.unschedulable, uid)
	if _, ok := q.inFlight[uid]; ok {
		q.inFlight[uid] = false
	}
}

// Pop blocks until a pod is active or ctx ends (then it returns nil). The
// pod is in flight until Done.
func (q *Queue) Pop(ctx context.Context) *QueuedPod {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 {
		if ctx.Err() != nil || q.closed {
			return nil
		}
		q.cond.Wait()
	}
	p := heap.Pop(&q.active).(*QueuedPod)
	p.Attempts++
	if p.InitialAttemptTimestamp.IsZero() {
		p.InitialAttemptTimestamp = q.clock.Now()
	}
	q.schedulingCycle++
	q.inFlight[p.Pod.UID] = true
	return p
}

// SchedulingCycle is the number of Pops so far.
func (q *Queue) SchedulingCycle() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.schedulingCycle
}

// Done ends the in-flight state of the pod with uid.
func (q *Queue) Done(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, uid)
}

// AddUnschedulable puts back a pod that failed in the cycle podCycle (as
// returned by SchedulingCycle right after its Pop): to backoff when the
// cluster changed since then (or when backoffOnly is set, for errors that
// are worth a plain retry), otherwise to the unschedulable set until the
// cluster changes. A pod deleted or bound while in flight is dropped. It
// ends the in-flight state.
func (q *Queue) AddUnschedulable(p *QueuedPod, podCycle int64, backoffOnly bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	alive, inFlight := q.inFlight[p.Pod.UID]
	delete(q.inFlight, p.Pod.UID)
	if inFlight && !alive {
		return
	}
	if q.active.find(p.Pod.UID) >= 0 || q.backoff.find(p.Pod.UID) >= 0 {
		return
	}
	if _, ok := q.unschedulable[p.Pod.UID]; ok {
		return
	}
	p.Timestamp = q.clock.Now()
	if backoffOnly || q.moveRequestCycle >= podCycle {
		heap.Push(&q.backoff, p)
		return
	}
	q.unschedulable[p.Pod.UID] = p
}

// MoveAllToActiveOrBackoff retries every unschedulable pod: those still
// backing off go to backoff, the others become active. Call it on cluster
// changes that may make pods fit.
func (q *Queue) MoveAllToActiveOrBackoff() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for uid, p := range q.unschedulable {
		delete(q.unschedulable, uid)
		q.requeueLocked(p)
	}
	q.moveRequestCycle = q.schedulingCycle
}

func (q *Queue) requeueLocked(p *QueuedPod) {
	if q.backoffExpiry(p).After(q.clock.Now()) {
		heap.Push(&q.backoff, p)
		return
	}
	heap.Push(&q.active, p)
	q.cond.Broadcast()
}

// Flush moves pods whose backoff ended to active, and pods unschedulable
// for longer than the maximum back to active or backoff.
func (q *Queue) Flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	moved := false
	for q.backoff.Len() > 0 {
		p := q.backoff.items[0]
		if q.backoffExpiry(p).After(now) {
			break
		}
		heap.Pop(&q.backoff)
		heap.Push(&q.active, p)
		moved = true
	}
	for uid, p := range q.unschedulable {
		if now.Sub(p.Timestamp) > q.maxUnschedulableDuration {
			delete(q.unschedulable, uid)
			q.requeueLocked(p)
		}
	}
	if moved {
		q.cond.Broadcast()
	}
}

// Run flushes every interval until ctx ends, then wakes blocked Pops.
func (q *Queue) Run(ctx context.Context, interval time.Duration) {
	t := q.clock.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			q.Close()
			return
		case <-t.C():
			q.Flush()
		}
	}
}

// Close wakes every blocked Pop; later Pops return nil once active is
// empty.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Counts returns the sizes of the active heap, the backoff heap and the
// unschedulable set.
func (q *Queue) Counts() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}

// podHeap is a heap of queued pods with an index by UID.
type podHeap struct {
	items []*QueuedPod
	byUID map[types.UID]*QueuedPod
	less  func(a, b *QueuedPod) bool
}

func (h *podHeap) find(uid types.UID) int {
	if p, ok := h.byUID[uid]; ok {
		return p.index
	}
	return -1
}

func (h podHeap) Len() int           { return len(h.items) }
func (h podHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h podHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}

func (h *podHeap) Push(x any) {
	p := x.(*QueuedPod)
	if h.byUID == nil {
		h.byUID = map[types.UID]*QueuedPod{}
	}
	p.index = len(h.items)
	h.items = append(h.items, p)
	h.byUID[p.Pod.UID] = p
}

func (h *podHeap) Pop() any {
	n := len(h.items)
	p := h.items[n-1]
	h.items[n-1] = nil
	h.items = h.items[:n-1]
	delete(h.byUID, p.Pod.UID)
	p.index = -1
	return p
}
