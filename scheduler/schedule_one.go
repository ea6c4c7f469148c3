package scheduler

import (
	"context"
	"errors"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	"github.com/tinykube/tinykube/scheduler/framework"
	"github.com/tinykube/tinykube/scheduler/internal/queue"
)

// Upstream's post-filter wording: the DynamicResources plugin's note for
// pods without resource claims, then the preemption outcome, which tells
// users whether evicting pods could help (this scheduler does not evict).
const (
	noClaimsToDeallocate = "no new claims to deallocate"
	preemptionNotHelpful = "Preemption is not helpful for scheduling"
	noPreemptionVictims  = "No preemption victims found for incoming pod"
	preemptionNever      = "not eligible due to preemptionPolicy=Never."
)

// scheduleOne takes one pod from the queue, picks a node and hands the
// binding to a worker. It returns false once ctx has ended.
func (s *Scheduler) scheduleOne(ctx context.Context) bool {
	qp := s.queue.Pop(ctx)
	if qp == nil {
		return false
	}
	cycle := s.queue.SchedulingCycle()
	// The queued object may be stale: drop pods deleted or bound since.
	pod, err := s.podLister.Pods(qp.Pod.Namespace).Get(qp.Pod.Name)
	if err != nil || pod.UID != qp.Pod.UID || !s.responsible(pod) || s.cache.IsAssumed(pod.UID) {
		s.queue.Done(qp.Pod.UID)
		return true
	}
	qp.Pod = pod
	state := framework.NewCycleState()
	host, err := s.schedulePod(ctx, state, pod)
	if err != nil {
		s.handleFailure(ctx, qp, cycle, err)
		return true
	}
	// Assume: count the pod on host now, so the next decision sees it.
	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = host
	pi := *state.PodInfo(pod)
	pi.Pod = assumed
	s.cache.AssumePod(&pi)
	s.submit(func(ctx context.Context) { s.bind(ctx, qp, cycle, assumed) })
	return true
}

// submit hands an API call to the workers.
func (s *Scheduler) submit(task func(context.Context)) {
	s.tasks <- task
}

// schedulePod runs the filters and scores and returns the chosen node.
func (s *Scheduler) schedulePod(ctx context.Context, state *framework.CycleState, pod *corev1.Pod) (string, error) {
	var host string
	var err error
	s.cache.View(func(nodes []*framework.NodeInfo) {
		if len(nodes) == 0 {
			err = framework.ErrNoNodesAvailable
			return
		}
		if st := s.fw.RunPreFilter(ctx, state, pod); !st.IsSuccess() {
			if st.IsRejected() {
				err = &framework.FitError{Pod: pod, NumAllNodes: len(nodes), Diagnosis: framework.Diagnosis{PreFilterMsg: st.Message()}}
				return
			}
			err = st.AsError()
			return
		}
		feasible, statuses, ferr := s.findFeasible(ctx, state, pod, nodes)
		if ferr != nil {
			err = ferr
			return
		}
		if len(feasible) == 0 {
			fitErr := &framework.FitError{Pod: pod, NumAllNodes: len(nodes), Diagnosis: framework.Diagnosis{NodeToStatus: statuses}}
			if msg := s.preemptionMessage(ctx, state, pod, nodes, statuses); msg != "" {
				fitErr.Diagnosis.PostFilterMsg = noClaimsToDeallocate + ", " + msg
			}
			err = fitErr
			return
		}
		if len(feasible) == 1 || !s.fw.HasScorers() {
			host = feasible[0].Name()
			return
		}
		scores, st := s.fw.RunScore(ctx, state, pod, feasible)
		if !st.IsSuccess() {
			err = st.AsError()
			return
		}
		host = selectHost(scores)
	})
	return host, err
}

// findFeasible filters nodes starting where the previous search stopped,
// until enough feasible nodes are found. Every node is visited when none
// fits, so statuses then holds a status for every node.
func (s *Scheduler) findFeasible(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodes []*framework.NodeInfo) ([]*framework.NodeInfo, map[string]*framework.Status, error) {
	want := numFeasibleNodesToFind(s.percentage, len(nodes))
	feasible := make([]*framework.NodeInfo, 0, want)
	var statuses map[string]*framework.Status
	start := s.nextStartNodeIndex % len(nodes)
	processed := 0
	for i := 0; i < len(nodes) && len(feasible) < want; i++ {
		n := nodes[(start+i)%len(nodes)]
		processed++
		st := s.fw.RunFilter(ctx, state, pod, n)
		switch {
		case st.IsSuccess():
			feasible = append(feasible, n)
		case st.IsRejected():
			if statuses == nil {
				statuses = make(map[string]*framework.Status)
			}
			statuses[n.Name()] = st
		default:
			return nil, nil, st.AsError()
		}
	}
	s.nextStartNodeIndex = (start + processed) % len(nodes)
	return feasible, statuses, nil
}

// numFeasibleNodesToFind is upstream's percentageOfNodesToScore rule.
func numFeasibleNodesToFind(percentage int32, numAll int) int {
	const minFeasible = 100
	if numAll < minFeasible || percentage >= 100 {
		return numAll
	}
	adaptive := int(percentage)
	if adaptive <= 0 {
		adaptive = 50 - numAll/125
		if adaptive < 5 {
			adaptive = 5
		}
	}
	n := numAll * adaptive / 100
	if n < minFeasible {
		return minFeasible
	}
	return n
}

// selectHost picks the highest score, breaking ties uniformly at random.
func selectHost(scores []framework.NodeScore) string {
	best, ties := 0, 1
	for i := 1; i < len(scores); i++ {
		switch {
		case scores[i].Score > scores[best].Score:
			best, ties = i, 1
		case scores[i].Score == scores[best].Score:
			ties++
			if rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return scores[best].Name
}

// preemptionMessage says, in upstream's words, whether evicting lower
// priority pods could make room: nodes rejected for reasons eviction cannot
// change are "not helpful", nodes without lower priority pods have "no
// victims", and other nodes are filtered again without those pods. It
// returns "" when eviction would help (this scheduler does not evict).
func (s *Scheduler) preemptionMessage(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodes []*framework.NodeInfo, statuses map[string]*framework.Status) string {
	if p := pod.Spec.PreemptionPolicy; p != nil && *p == corev1.PreemptNever {
		return "preemption: " + preemptionNever
	}
	prio := corev1helpers.PodPriority(pod)
	dry := map[string]*framework.Status{}
	for _, n := range nodes {
		if statuses[n.Name()].Code() != framework.Unschedulable {
			continue
		}
		var clone *framework.NodeInfo
		for uid, pi := range n.Pods {
			if corev1helpers.PodPriority(pi.Pod) < prio {
				if clone == nil {
					clone = n.Clone()
				}
				clone.RemovePod(uid)
			}
		}
		if clone == nil {
			dry[n.Name()] = framework.NewStatus(framework.UnschedulableAndUnresolvable, noPreemptionVictims)
			continue
		}
		if st := s.fw.RunFilter(ctx, state, pod, clone); !st.IsSuccess() {
			dry[n.Name()] = st
			continue
		}
		klog.FromContext(ctx).V(4).Info("preemption would help, but this scheduler does not evict", "pod", klog.KObj(pod), "node", n.Name())
		return ""
	}
	fitErr := &framework.FitError{Pod: pod, NumAllNodes: len(nodes), Diagnosis: framework.Diagnosis{
		NodeToStatus: dry,
		AbsentStatus: framework.NewStatus(framework.UnschedulableAndUnresolvable, preemptionNotHelpful),
	}}
	return "preemption: " + fitErr.Error()
}

// requeue puts a failed pod back: unschedulable pods wait for a cluster
// change, errors back off.
func (s *Scheduler) requeue(qp *queue.QueuedPod, cycle int64, err error) {
	var fitErr *framework.FitError
	backoffOnly := !errors.As(err, &fitErr) && !errors.Is(err, framework.ErrNoNodesAvailable)
	s.queue.AddUnschedulable(qp, cycle, backoffOnly)
}
