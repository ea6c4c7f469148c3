package job

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

// completionIndexEnv is the variable an Indexed Job's containers read
// their index from, as upstream.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

// managePods creates or deletes pods so that as many run as parallelism
// and the remaining completions want. It returns how long to wait before
// the failure back-off lets it create pods again (0: no wait).
func (c *Controller) managePods(ctx context.Context, key string, job *batchv1.Job, s *podSets, succeeded int32, now time.Time) (time.Duration, error) {
	parallelism := ptr.Deref(job.Spec.Parallelism, 1)
	var want int32
	switch {
	case job.Spec.Completions == nil && succeeded > 0:
		// One success ends a work queue Job: no new pods, the running
		// ones finish on their own.
		want = int32(len(s.active))
	case job.Spec.Completions == nil:
		want = parallelism
	case isIndexed(job):
		done := int32(parseIndexes(job.Status.CompletedIndexes, completions(job)).Len())
		want = min(parallelism, *job.Spec.Completions-done)
	default:
		want = min(parallelism, *job.Spec.Completions-succeeded)
	}
	want = max(want, 0)
	running := int32(len(s.active))
	if onlyReplaceFailed(job) {
		running += int32(len(s.terminating))
	}
	if running > want {
		excess := excessPods(job, s.active, int(running-want))
		if err := c.deletePods(ctx, job, excess, true); err != nil {
			return 0, err
		}
		s.active = slices.DeleteFunc(s.active, func(p *corev1.Pod) bool { return slices.Contains(excess, p) })
		return 0, nil
	}
	if running == want || !c.creationsSettled(key) {
		return 0, nil
	}
	if wait := c.backOffRemaining(job, now); wait > 0 {
		return wait, nil
	}
	var indexes []int32
	if isIndexed(job) {
		indexes = missingIndexes(job, append(slices.Clone(s.active), s.terminating...), int(want-running))
	} else {
		for range want - running {
			indexes = append(indexes, -1)
		}
	}
	c.expectCreations(key, len(indexes))
	for _, ix := range indexes {
		pod, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, newPod(job, ix), metav1.CreateOptions{})
		if err != nil {
			c.creationFailed(key)
			if apierrors.IsAlreadyExists(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				continue
			}
			c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
			return 0, err
		}
		c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", pod.Name)
		s.active = append(s.active, pod)
	}
	return 0, nil
}

// excessPods picks n pods to delete: not yet scheduled before
// scheduled, not ready before ready, newest first; for an Indexed Job,
// duplicates and indexes beyond completions first.
func excessPods(job *batchv1.Job, active []*corev1.Pod, n int) []*corev1.Pod {
	pods := slices.Clone(active)
	rank := func(p *corev1.Pod) int {
		r := 0
		if ix, ok := completionIndex(p); isIndexed(job) && (!ok || ix >= completions(job)) {
			r -= 4
		}
		if p.Spec.NodeName != "" {
			r += 2
		}
		if countReady([]*corev1.Pod{p}) > 0 {
			r++
		}
		return r
	}
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	return pods[:min(n, len(pods))]
}

// missingIndexes are the n lowest indexes that neither succeeded nor have
// a pod.
func missingIndexes(job *batchv1.Job, pods []*corev1.Pod, n int) []int32 {
	taken := parseIndexes(job.Status.CompletedIndexes, completions(job))
	for _, p := range pods {
		if ix, ok := completionIndex(p); ok {
			taken.Insert(ix)
		}
	}
	var out []int32
	for ix := int32(0); ix < completions(job) && len(out) < n; ix++ {
		if !taken.Has(ix) {
			out = append(out, ix)
		}
	}
	return out
}

// newPod is job's pod from its template; index is -1 for NonIndexed Jobs.
func newPod(job *batchv1.Job, index int32) *corev1.Pod {
	t := job.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    job.Name + "-",
			Namespace:       job.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, controllerKind)},
			Finalizers:      []string{batchv1.JobTrackingFinalizer},
		},
		Spec: t.Spec,
	}
	if index < 0 {
		return pod
	}
	ix := strconv.Itoa(int(index))
	pod.GenerateName = fmt.Sprintf("%s-%s-", job.Name, ix)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[batchv1.JobCompletionIndexAnnotation] = ix
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[batchv1.JobCompletionIndexAnnotation] = ix
	if pod.Spec.Hostname == "" {
		pod.Spec.Hostname = fmt.Sprintf("%s-%s", job.Name, ix)
	}
	env := corev1.EnvVar{Name: completionIndexEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		FieldPath: fmt.Sprintf("metadata.annotations['%s']", batchv1.JobCompletionIndexAnnotation)}}}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if !slices.ContainsFunc(cs[i].Env, func(e corev1.EnvVar) bool { return e.Name == completionIndexEnv }) {
				cs[i].Env = append(cs[i].Env, env)
			}
		}
	}
	return pod
}

func isIndexed(job *batchv1.Job) bool {
	return ptr.Deref(job.Spec.CompletionMode, "") == batchv1.IndexedCompletion
}

func completions(job *batchv1.Job) int32 { return ptr.Deref(job.Spec.Completions, 0) }

// completionIndex is the index annotation of an Indexed Job's pod.
func completionIndex(p *corev1.Pod) (int32, bool) {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return 0, false
	}
	ix, err := strconv.ParseInt(v, 10, 32)
	return int32(ix), err == nil && ix >= 0
}

// parseIndexes reads status.completedIndexes ("1,3-5,7"), keeping the
// indexes below limit.
func parseIndexes(s string, limit int32) sets.Set[int32] {
	out := sets.New[int32]()
	for part := range strings.SplitSeq(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.ParseInt(lo, 10, 32)
		if err != nil {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.ParseInt(hi, 10, 32); err != nil {
				continue
			}
		}
		for ix := int32(first); ix <= int32(last) && ix < limit; ix++ {
			out.Insert(ix)
		}
	}
	return out
}

// formatIndexes writes indexes as upstream: ascending, every run of
// consecutive indexes as "first-last".
func formatIndexes(indexes sets.Set[int32]) string {
	sorted := sets.List(indexes)
	var parts []string
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(int(sorted[i])))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", sorted[i], sorted[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func jsonStrings(s []string) string {
	if s == nil {
		s = []string{}
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// expireFinished deletes a finished Job whose ttlSecondsAfterFinished has
// passed, as upstream's ttl-after-finished-controller (foreground, so
// its pods go first), or waits until it does.
func (c *Controller) expireFinished(ctx context.Context, key string, job *batchv1.Job) error {
	ttl := job.Spec.TTLSecondsAfterFinished
	if ttl == nil {
		return nil
	}
	var finishedAt time.Time
	for _, cond := range job.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			finishedAt = cond.LastTransitionTime.Time
		}
	}
	if left := finishedAt.Add(time.Duration(*ttl) * time.Second).Sub(c.clock.Now()); left > 0 {
		c.queue.AddAfter(key, left)
		return nil
	}
	err := c.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &job.UID, ResourceVersion: &job.ResourceVersion},
		PropagationPolicy: ptr.To(metav1.DeletePropagationForeground),
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or changed: the change wakes us again
	}
	return err
}
