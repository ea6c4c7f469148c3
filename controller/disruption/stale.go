package disruption

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/cache"
)

// StalePodDisruptionTimeout is how long a pod may carry a DisruptionTarget
// condition without being deleted before the condition is reset, as
// upstream (an eviction that set it but whose delete failed).
const StalePodDisruptionTimeout = 2 * time.Minute

// fieldManager owns the reset condition, as upstream names it.
const fieldManager = "DisruptionController"

// staleDisruption says whether the pod carries a DisruptionTarget
// condition that will be stale, and in how long. Conditions the kubelet
// set (the pod is being terminated by it, however long that takes) and
// those of finished or deleting pods never are.
func (c *Controller) staleDisruption(pod *corev1.Pod) (bool, time.Duration) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false, 0
	}
	for _, cond := range pod.Status.Conditions {
		if cond.Type != corev1.DisruptionTarget {
			continue
		}
		if cond.Status != corev1.ConditionTrue || cond.Reason == corev1.PodReasonTerminationByKubelet {
			return false, 0
		}
		return true, max(StalePodDisruptionTimeout-c.clock.Since(cond.LastTransitionTime.Time), 0)
	}
	return false, 0
}

// watchStaleDisruption queues the pod for when its condition goes stale.
func (c *Controller) watchStaleDisruption(pod *corev1.Pod) {
	if stale, after := c.staleDisruption(pod); stale {
		if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
			c.staleQueue.AddAfter(key, after)
		}
	}
}

// syncStaleDisruption sets a stale DisruptionTarget condition to False
// with a server-side apply of the pod's status, pinned to the version it
// judged.
func (c *Controller) syncStaleDisruption(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	stale, after := c.staleDisruption(pod)
	if !stale {
		return nil
	}
	if after > 0 {
		c.staleQueue.AddAfter(key, after)
		return nil
	}
	apply := corev1apply.Pod(pod.Name, pod.Namespace).WithResourceVersion(pod.ResourceVersion).
		WithStatus(corev1apply.PodStatus().WithConditions(corev1apply.PodCondition().
			WithType(corev1.DisruptionTarget).WithStatus(corev1.ConditionFalse).WithLastTransitionTime(metav1.NewTime(c.clock.Now()))))
	_, err = c.client.CoreV1().Pods(namespace).ApplyStatus(ctx, apply, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
