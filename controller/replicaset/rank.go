package replicaset

import (
	"math"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appslisters "k8s.io/client-go/listers/apps/v1"
)

// podDeletionCost is the annotation that lets users say which pods of a
// ReplicaSet should go first on scale-down (lower cost first).
const podDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

// relatedPods are the active pods of every ReplicaSet that shares rs's
// controller (the ReplicaSets of one Deployment), or rs's own pods when it
// has none. Scale-down prefers pods on nodes crowded with related pods.
func relatedPods(rs *appsv1.ReplicaSet, owned, all []*corev1.Pod, lister appslisters.ReplicaSetLister) []*corev1.Pod {
	ref := metav1.GetControllerOf(rs)
	if ref == nil {
		return owned
	}
	siblings, err := lister.ReplicaSets(rs.Namespace).List(labels.Everything())
	if err != nil {
		return owned
	}
	uids := map[string]bool{}
	for _, s := range siblings {
		if r := metav1.GetControllerOf(s); r != nil && r.UID == ref.UID {
			uids[string(s.UID)] = true
		}
	}
	var out []*corev1.Pod
	for _, p := range all {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if r := metav1.GetControllerOf(p); r != nil && uids[string(r.UID)] {
			out = append(out, p)
		}
	}
	return out
}

// podsToDelete picks the n least valuable of pods, in upstream's order:
// unscheduled before scheduled; pending before unknown before running;
// not ready before ready; lower pod-deletion-cost first; more related
// pods on the same node first; ready for a shorter time first; more
// container restarts first; newer first. Ready and creation times are
// compared in powers of two of their age at now, with ties broken by UID,
// as upstream's LogarithmicScaleDown does, so scale-down spreads over
// pods of similar age instead of always taking the very newest.
func podsToDelete(pods, related []*corev1.Pod, n int, now time.Time) []*corev1.Pod {
	if n >= len(pods) {
		return pods
	}
	onNode := map[string]int{}
	for _, p := range related {
		if p.Spec.NodeName != "" {
			onNode[p.Spec.NodeName]++
		}
	}
	ranked := append([]*corev1.Pod(nil), pods...)
	sort.SliceStable(ranked, func(i, j int) bool {
		return lessValuable(ranked[i], ranked[j], onNode, now)
	})
	return ranked[:n]
}

var phaseOrder = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

func lessValuable(a, b *corev1.Pod, onNode map[string]int, now time.Time) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if pa, pb := phaseOrder[a.Status.Phase], phaseOrder[b.Status.Phase]; pa != pb {
		return pa < pb
	}
	if ra, rb := podReady(a), podReady(b); ra != rb {
		return !ra
	}
	if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
		return ca < cb
	}
	if na, nb := rankOnNode(a, onNode), rankOnNode(b, onNode); na != nb {
		return na > nb
	}
	if podReady(a) {
		ta, tb := readyCondition(a).LastTransitionTime, readyCondition(b).LastTransitionTime
		if !ta.Equal(&tb) {
			return youngerFirst(a, b, ta.Time, tb.Time, now)
		}
	}
	if ra, rb := restarts(a), restarts(b); ra != rb {
		return ra > rb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return youngerFirst(a, b, a.CreationTimestamp.Time, b.CreationTimestamp.Time, now)
	}
	return false
}

// youngerFirst: a goes before b when ta is in a younger power-of-two age
// bucket than tb; in the same bucket the lower UID goes first. Zero times
// count as youngest.
func youngerFirst(a, b *corev1.Pod, ta, tb, now time.Time) bool {
	if ta.IsZero() || tb.IsZero() || now.IsZero() {
		return ta.IsZero() && !tb.IsZero() || !ta.IsZero() && !tb.IsZero() && ta.After(tb)
	}
	if d := ageBucket(ta, now) - ageBucket(tb, now); d != 0 {
		return d < 0
	}
	return a.UID < b.UID
}

func ageBucket(t, now time.Time) int {
	age := now.Sub(t)
	if age <= 0 {
		return -1
	}
	return int(math.Log2(float64(age)))
}

func rankOnNode(p *corev1.Pod, onNode map[string]int) int {
	if p.Spec.NodeName == "" {
		return 0
	}
	return onNode[p.Spec.NodeName]
}

func deletionCost(p *corev1.Pod) int64 {
	v, ok := p.Annotations[podDeletionCost]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return n
}

func restarts(p *corev1.Pod) int32 {
	var most int32
	for _, s := range p.Status.ContainerStatuses {
		most = max(most, s.RestartCount)
	}
	return most
}
