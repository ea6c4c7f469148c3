package framework

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ErrNoNodesAvailable is returned when the cluster has no nodes at all.
var ErrNoNodesAvailable = errors.New("no nodes available to schedule pods")

// Diagnosis records why a pod fits nowhere.
type Diagnosis struct {
	// NodeToStatus holds the failing status per node name.
	NodeToStatus map[string]*Status
	// PreFilterMsg is set when a PreFilter plugin rejected the pod for
	// all nodes.
	PreFilterMsg string
	// PostFilterMsg is the post-filter outcome, e.g. "no new claims to
	// deallocate, preemption: 0/3 nodes are available: 3 Preemption is not
	// helpful for scheduling."
	PostFilterMsg string
	// AbsentStatus counts for every node missing from NodeToStatus.
	AbsentStatus *Status
}

// FitError is a pod that fits no node.
type FitError struct {
	Pod         *corev1.Pod
	NumAllNodes int
	Diagnosis   Diagnosis
}

// Error renders upstream's message: "0/N nodes are available: " then a
// sorted histogram of reasons ("1 Insufficient cpu, 2 node(s) had
// untolerated taint(s).") then the post-filter message ("no new claims to
// deallocate, preemption: ...").
func (f *FitError) Error() string {
	msg := fmt.Sprintf("0/%v nodes are available:", f.NumAllNodes)
	if f.Diagnosis.PreFilterMsg != "" {
		msg += fmt.Sprintf(" %v.", f.Diagnosis.PreFilterMsg)
	} else if h := ReasonHistogram(f.Diagnosis.NodeToStatus, f.NumAllNodes, f.Diagnosis.AbsentStatus); h != "" {
		msg += fmt.Sprintf(" %v.", h)
	}
	if f.Diagnosis.PostFilterMsg != "" {
		msg += " " + f.Diagnosis.PostFilterMsg
	}
	return msg
}

// ReasonHistogram counts each reason over the nodes in statuses, counts
// absent for the nodes missing from statuses (up to numAllNodes), and joins
// "COUNT REASON" strings in sorted order with ", ".
func ReasonHistogram(statuses map[string]*Status, numAllNodes int, absent *Status) string {
	counts := map[string]int{}
	for _, s := range statuses {
		for _, r := range s.Reasons() {
			counts[r]++
		}
	}
	if missing := numAllNodes - len(statuses); missing > 0 {
		for _, r := range absent.Reasons() {
			counts[r] += missing
		}
	}
	parts := make([]string, 0, len(counts))
	for r, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
