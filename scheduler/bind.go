package scheduler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/tinykube/tinykube/scheduler/internal/queue"
)

// bind posts the pods/binding subresource for an assumed pod. On failure
// the assumed resources are released and the pod is retried with backoff,
// unless it is gone or was bound by someone else.
func (s *Scheduler) bind(ctx context.Context, qp *queue.QueuedPod, cycle int64, assumed *corev1.Pod) {
	host := assumed.Spec.NodeName
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: assumed.Namespace, Name: assumed.Name, UID: assumed.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: host},
	}
	err := s.client.CoreV1().Pods(assumed.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	if err == nil {
		s.queue.Done(assumed.UID)
		s.recorder.Eventf(assumed, corev1.EventTypeNormal, EventReasonScheduled, "Successfully assigned %v/%v to %v", assumed.Namespace, assumed.Name, host)
		return
	}
	logger := klog.FromContext(ctx)
	s.cache.ForgetPod(assumed.UID)
	// Resources were released: pods waiting for them may fit now.
	s.queue.MoveAllToActiveOrBackoff()
	if apierrors.IsNotFound(err) {
		s.queue.Done(assumed.UID)
		return
	}
	if cur, gerr := s.podLister.Pods(assumed.Namespace).Get(assumed.Name); gerr == nil && cur.UID == assumed.UID && cur.Spec.NodeName != "" {
		// Bound elsewhere: the informer counts it where it went.
		s.queue.Done(assumed.UID)
		return
	}
	logger.Error(err, "binding pod", "pod", klog.KObj(assumed), "node", host)
	s.recorder.Event(qp.Pod, corev1.EventTypeWarning, EventReasonFailedScheduling, fmt.Sprintf("Binding rejected: %v", err))
	s.queue.AddUnschedulable(qp, cycle, true)
}
