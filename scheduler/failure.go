package scheduler

import (
	"context"
	"encoding/json"
	"errors"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/tinykube/tinykube/scheduler/framework"
	"github.com/tinykube/tinykube/scheduler/internal/queue"
)

// Event reasons, as upstream records them.
const (
	EventReasonScheduled        = "Scheduled"
	EventReasonFailedScheduling = "FailedScheduling"
	// ReasonSchedulerError is the PodScheduled reason for internal errors.
	ReasonSchedulerError = "SchedulerError"
)

// handleFailure requeues the pod, records a FailedScheduling event and sets
// PodScheduled=False with the reason through the pods/status subresource.
func (s *Scheduler) handleFailure(ctx context.Context, qp *queue.QueuedPod, cycle int64, err error) {
	pod := qp.Pod
	s.requeue(qp, cycle, err)
	reason := corev1.PodReasonUnschedulable
	var fitErr *framework.FitError
	if !errors.As(err, &fitErr) && !errors.Is(err, framework.ErrNoNodesAvailable) {
		reason = ReasonSchedulerError
	}
	msg := err.Error()
	klog.FromContext(ctx).V(2).Info("unable to schedule pod", "pod", klog.KObj(pod), "reason", reason, "message", msg)
	s.recorder.Event(pod, corev1.EventTypeWarning, EventReasonFailedScheduling, msg)
	cond := corev1.PodCondition{
		Type:               corev1.PodScheduled,
		Status:             corev1.ConditionFalse,
		Reason:             reason,
		Message:            msg,
		ObservedGeneration: pod.Generation,
	}
	if hasCondition(pod, cond) {
		return
	}
	s.submit(func(ctx context.Context) { s.patchCondition(ctx, pod, cond) })
}

func hasCondition(pod *corev1.Pod, want corev1.PodCondition) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == want.Type {
			return c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message && c.ObservedGeneration == want.ObservedGeneration
		}
	}
	return false
}

// patchCondition sets cond with a strategic merge patch on pods/status;
// conditions merge by type, so other conditions are kept.
func (s *Scheduler) patchCondition(ctx context.Context, pod *corev1.Pod, cond corev1.PodCondition) {
	cond.LastTransitionTime = metav1.NewTime(s.clock.Now())
	for _, c := range pod.Status.Conditions {
		if c.Type == cond.Type && c.Status == cond.Status {
			cond.LastTransitionTime = c.LastTransitionTime
		}
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   map[string]any{"conditions": []corev1.PodCondition{cond}},
	})
	if err != nil {
		return
	}
	_, err = s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Error(err, "setting PodScheduled condition", "pod", klog.KObj(pod))
	}
}
