package job

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// Condition reasons and messages, as upstream's job controller writes them.
const (
	reasonCompletionsReached = batchv1.JobReasonCompletionsReached
	msgCompletionsReached    = "Reached expected number of succeeded pods"
	msgBackoffLimit          = "Job has reached the specified backoff limit"
	msgDeadline              = "Job was active longer than specified deadline"
)

// podSets is a Job's pods by what they are doing.
type podSets struct {
	active      []*corev1.Pod // not terminal, not being deleted
	terminating []*corev1.Pod // being deleted, not terminal
	tracked     []*corev1.Pod // still holding the tracking finalizer
}

func (c *Controller) sync(ctx context.Context, key string) error {
	if podKey, ok := strings.CutPrefix(key, orphanPodPrefix); ok {
		return c.releaseOrphan(ctx, podKey)
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	shared, err := c.jobLister.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		c.releaseOrphansOf(ns, name)
		return nil
	}
	if err != nil {
		return err
	}
	if m := shared.Spec.ManagedBy; m != nil && *m != batchv1.JobControllerName {
		return nil // another controller runs this Job, as upstream allows
	}
	job := shared.DeepCopy()
	pods, err := c.ownedPods(job)
	if err != nil {
		return err
	}
	sets := classify(pods)
	if isFinished(job) || job.DeletionTimestamp != nil {
		// Nothing more is counted: let every pod go.
		if err := c.releasePods(ctx, key, sets.tracked); err != nil {
			return err
		}
		if job.DeletionTimestamp != nil {
			c.forget(key)
			return nil
		}
		return c.expireFinished(ctx, key, job)
	}
	now := c.clock.Now()
	if err := c.countTerminated(ctx, key, job, pods); err != nil {
		return err
	}
	sets = classify(c.stillTracked(key, pods))
	st := &job.Status
	succeeded := st.Succeeded + int32(len(st.UncountedTerminatedPods.Succeeded))
	failed := st.Failed + int32(len(st.UncountedTerminatedPods.Failed))

	if cond := finishingCondition(job); cond == nil {
		switch {
		case failed > ptr.Deref(job.Spec.BackoffLimit, 6) || pastBackoffLimitOnFailure(job, sets.active):
			setCondition(st, batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, msgBackoffLimit, now)
		case deadlineExceeded(job, now):
			setCondition(st, batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded, msgDeadline, now)
		case completed(job, succeeded, len(sets.active)):
			setCondition(st, batchv1.JobSuccessCriteriaMet, reasonCompletionsReached, msgCompletionsReached, now)
		}
	}
	var requeueAfter time.Duration
	if cond := finishingCondition(job); cond != nil {
		// Pods of a failing Job are deleted and counted as failed; the
		// leftovers of a succeeded one are let go.
		if cond.Type == batchv1.JobFailureTarget {
			err = c.deletePods(ctx, job, sets.active, false)
		} else {
			err = c.deletePods(ctx, job, sets.active, true)
		}
		if err != nil {
			return err
		}
		// Finished only once every pod it made is seen and gone.
		if len(sets.tracked) == 0 && len(st.UncountedTerminatedPods.Succeeded)+len(st.UncountedTerminatedPods.Failed) == 0 &&
			c.creationsSettled(key) {
			c.finish(job, cond, now)
		}
		sets.active = nil
	} else if ptr.Deref(job.Spec.Suspend, false) {
		if err := c.deletePods(ctx, job, sets.active, true); err != nil {
			return err
		}
		sets.active = nil
		if !hasCondition(job, batchv1.JobSuspended, corev1.ConditionTrue) {
			setCondition(st, batchv1.JobSuspended, "JobSuspended", "Job suspended", now)
			c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
		}
	} else {
		if hasCondition(job, batchv1.JobSuspended, corev1.ConditionTrue) {
			setConditionStatus(st, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
			// The deadline counts from the resume.
			st.StartTime = nil
		}
		if st.StartTime == nil {
			st.StartTime = &metav1.Time{Time: now}
		}
		if ads := job.Spec.ActiveDeadlineSeconds; ads != nil {
			requeueAfter = st.StartTime.Add(time.Duration(*ads)*time.Second).Sub(now) + time.Millisecond
		}
		wait, err := c.managePods(ctx, key, job, &sets, succeeded, now)
		if err != nil {
			return err
		}
		if wait > 0 && (requeueAfter == 0 || wait < requeueAfter) {
			requeueAfter = wait
		}
	}
	st.Active = int32(len(sets.active))
	st.Ready = ptr.To(countReady(sets.active))
	st.Terminating = ptr.To(int32(len(sets.terminating)))
	if err := c.writeStatus(ctx, shared, job); err != nil {
		return err
	}
	if requeueAfter > 0 {
		c.queue.AddAfter(key, requeueAfter)
	}
	return nil
}

// releaseOrphansOf queues the tracked pods of the gone Job ns/name for
// release: their events may have come before the Job's deletion.
func (c *Controller) releaseOrphansOf(ns, name string) {
	pods, err := c.podLister.Pods(ns).List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == controllerKind.Kind && ref.Name == name && hasTrackingFinalizer(p) {
			c.queue.Add(orphanPodPrefix + ns + "/" + p.Name)
		}
	}
}

// releaseOrphan removes the tracking finalizer of a pod whose Job is
// gone (asking the API server, not the cache, before it does).
func (c *Controller) releaseOrphan(ctx context.Context, podKey string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(podKey)
	if err != nil {
		return nil
	}
	pod, err := c.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !hasTrackingFinalizer(pod)) {
		return nil
	}
	if err != nil {
		return err
	}
	ref := metav1.GetControllerOf(pod)
	if ref != nil {
		job, err := c.client.BatchV1().Jobs(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil && job.UID == ref.UID {
			c.queue.Add(ns + "/" + ref.Name)
			return nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return c.removeTrackingFinalizer(ctx, pod)
}

// ownedPods lists the pods of job's namespace that job controls.
func (c *Controller) ownedPods(job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		sel = labels.Nothing()
	}
	all, err := c.podLister.Pods(job.Namespace).List(sel)
	if err != nil {
		return nil, err
	}
	var pods []*corev1.Pod
	for _, p := range all {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == job.UID {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

func classify(pods []*corev1.Pod) podSets {
	var s podSets
	for _, p := range pods {
		terminal := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		switch {
		case !terminal && p.DeletionTimestamp == nil:
			s.active = append(s.active, p)
		case !terminal:
			s.terminating = append(s.terminating, p)
		}
		if hasTrackingFinalizer(p) {
			s.tracked = append(s.tracked, p)
		}
	}
	return s
}

// stillTracked drops from pods those whose finalizer this controller
// has already removed: they are counted and gone as far as the Job is
// concerned.
func (c *Controller) stillTracked(key string, pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if hasTrackingFinalizer(p) && c.finalizerRemovalPending(key, p.UID) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func hasTrackingFinalizer(p *corev1.Pod) bool {
	return slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer)
}

// isPodFailed is upstream's: a Failed pod, or (unless only failed pods
// are replaced) a pod deleted before it succeeded.
func isPodFailed(p *corev1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if onlyReplaceFailed(job) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

func onlyReplaceFailed(job *batchv1.Job) bool {
	return ptr.Deref(job.Spec.PodReplacementPolicy, "") == batchv1.Failed || job.Spec.PodFailurePolicy != nil
}

// countTerminated is upstream's finalizer-based tracking: finished pods
// are first recorded in status.uncountedTerminatedPods, then let go
// (their finalizer removed), then moved into succeeded and failed. A
// crash between the steps neither loses nor doubles a count.
func (c *Controller) countTerminated(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) error {
	st := &job.Status
	if st.UncountedTerminatedPods == nil {
		st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	uncounted := st.UncountedTerminatedPods
	indexed := isIndexed(job)
	completedIndexes := parseIndexes(st.CompletedIndexes, completions(job))
	var release []*corev1.Pod
	var newFailures []*corev1.Pod
	recorded, newSuccess := false, false
	for _, p := range pods {
		if !hasTrackingFinalizer(p) || c.finalizerRemovalPending(key, p.UID) {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			release = append(release, p)
			if slices.Contains(uncounted.Succeeded, p.UID) || slices.Contains(uncounted.Failed, p.UID) {
				continue
			}
			if indexed {
				ix, ok := completionIndex(p)
				if !ok || ix >= completions(job) || completedIndexes.Has(ix) {
					continue // a duplicate of an index that already succeeded
				}
				completedIndexes.Insert(ix)
			}
			uncounted.Succeeded = append(uncounted.Succeeded, p.UID)
			recorded, newSuccess = true, true
		case isPodFailed(p, job):
			release = append(release, p)
			if slices.Contains(uncounted.Failed, p.UID) || slices.Contains(uncounted.Succeeded, p.UID) {
				continue
			}
			action, message := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p)
			switch action {
			case batchv1.PodFailurePolicyActionIgnore:
				continue // neither counted nor a reason to back off
			case batchv1.PodFailurePolicyActionFailJob:
				if finishingCondition(job) == nil {
					setCondition(st, batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy, message, c.clock.Now())
				}
			}
			uncounted.Failed = append(uncounted.Failed, p.UID)
			newFailures = append(newFailures, p)
			recorded = true
		}
	}
	if indexed {
		st.CompletedIndexes = formatIndexes(completedIndexes)
	}
	if recorded {
		if err := c.updateStatus(ctx, job); err != nil {
			return err
		}
		c.recordOutcomes(job, newSuccess, newFailures)
	}
	if err := c.releasePods(ctx, key, release); err != nil {
		return err
	}
	// Every recorded pod that no longer holds the finalizer is counted.
	byUID := map[types.UID]*corev1.Pod{}
	for _, p := range pods {
		byUID[p.UID] = p
	}
	released := func(uid types.UID) bool {
		p, ok := byUID[uid]
		return !ok || !hasTrackingFinalizer(p) || c.finalizerRemovalPending(key, uid)
	}
	uncounted.Succeeded = slices.DeleteFunc(uncounted.Succeeded, func(uid types.UID) bool {
		if released(uid) {
			st.Succeeded++
			return true
		}
		return false
	})
	uncounted.Failed = slices.DeleteFunc(uncounted.Failed, func(uid types.UID) bool {
		if released(uid) {
			st.Failed++
			return true
		}
		return false
	})
	return nil
}

// recordOutcomes keeps the failure back-off of job: a success resets it,
// each failure doubles the wait before the next pod.
func (c *Controller) recordOutcomes(job *batchv1.Job, succeeded bool, failures []*corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := job.Namespace + "/" + job.Name
	rec := c.backOff[key]
	if succeeded || rec.uid != job.UID {
		rec = backOffRecord{uid: job.UID}
	}
	for _, p := range failures {
		rec.failures++
		if t := finishTime(p, c.clock.Now()); t.After(rec.lastFailure) {
			rec.lastFailure = t
		}
	}
	c.backOff[key] = rec
}

// finishTime is when the last container of p finished (or now).
func finishTime(p *corev1.Pod, now time.Time) time.Time {
	var t time.Time
	for _, cs := range p.Status.ContainerStatuses {
		if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
			t = term.FinishedAt.Time
		}
	}
	if t.IsZero() || t.After(now) {
		return now
	}
	return t
}

// backOffRemaining is how long job must still wait before it replaces a
// failed pod.
func (c *Controller) backOffRemaining(job *batchv1.Job, now time.Time) time.Duration {
	c.mu.Lock()
	rec := c.backOff[job.Namespace+"/"+job.Name]
	c.mu.Unlock()
	if rec.failures == 0 || rec.uid != job.UID {
		return 0
	}
	delay := defaultBackOff
	for i := 1; i < rec.failures && delay < maxBackOff; i++ {
		delay *= 2
	}
	return rec.lastFailure.Add(min(delay, maxBackOff)).Sub(now)
}

// releasePods removes the tracking finalizer from pods.
func (c *Controller) releasePods(ctx context.Context, key string, pods []*corev1.Pod) error {
	for _, p := range pods {
		if c.finalizerRemovalPending(key, p.UID) {
			continue
		}
		if err := c.removeTrackingFinalizer(ctx, p); err != nil {
			return err
		}
		c.expectFinalizerRemoval(key, p.UID)
	}
	return nil
}

func (c *Controller) removeTrackingFinalizer(ctx context.Context, p *corev1.Pod) error {
	var kept []string
	for _, f := range p.Finalizers {
		if f != batchv1.JobTrackingFinalizer {
			kept = append(kept, f)
		}
	}
	// The resourceVersion makes this a compare-and-swap of the list.
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"finalizers":%s}}`, p.ResourceVersion, jsonStrings(kept))
	_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// deletePods deletes pods; release first lets them go uncounted (a
// suspended Job, excess parallelism, a succeeded Job's leftovers).
func (c *Controller) deletePods(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod, release bool) error {
	key := job.Namespace + "/" + job.Name
	if release {
		if err := c.releasePods(ctx, key, pods); err != nil {
			return err
		}
	}
	for _, p := range pods {
		err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
			return err
		}
		c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
	}
	return nil
}

// finish turns the finishing condition into Complete or Failed, once no
// pod of the Job is left running or uncounted.
func (c *Controller) finish(job *batchv1.Job, cond *batchv1.JobCondition, now time.Time) {
	if cond.Type == batchv1.JobSuccessCriteriaMet {
		setCondition(&job.Status, batchv1.JobComplete, cond.Reason, cond.Message, now)
		job.Status.CompletionTime = &metav1.Time{Time: now}
		c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
	} else {
		setCondition(&job.Status, batchv1.JobFailed, cond.Reason, cond.Message, now)
		c.recorder.Event(job, corev1.EventTypeWarning, cond.Reason, cond.Message)
	}
	c.forget(job.Namespace + "/" + job.Name)
}

// writeStatus writes job's status when it differs from what is stored.
func (c *Controller) writeStatus(ctx context.Context, stored, job *batchv1.Job) error {
	if apiequality.Semantic.DeepEqual(stored.Status, job.Status) {
		return nil
	}
	if err := c.updateStatus(ctx, job); !apierrors.IsNotFound(err) {
		return err
	}
	return nil // deleted meanwhile: its deletion wakes us again
}

func (c *Controller) updateStatus(ctx context.Context, job *batchv1.Job) error {
	updated, err := c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	job.ResourceVersion = updated.ResourceVersion
	return nil
}

func isFinished(job *batchv1.Job) bool {
	return hasCondition(job, batchv1.JobComplete, corev1.ConditionTrue) || hasCondition(job, batchv1.JobFailed, corev1.ConditionTrue)
}

// finishingCondition is the FailureTarget or SuccessCriteriaMet condition
// of job, if it has one.
func finishingCondition(job *batchv1.Job) *batchv1.JobCondition {
	for i, cond := range job.Status.Conditions {
		if (cond.Type == batchv1.JobFailureTarget || cond.Type == batchv1.JobSuccessCriteriaMet) && cond.Status == corev1.ConditionTrue {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

func hasCondition(job *batchv1.Job, t batchv1.JobConditionType, status corev1.ConditionStatus) bool {
	for _, cond := range job.Status.Conditions {
		if cond.Type == t {
			return cond.Status == status
		}
	}
	return false
}

func setCondition(st *batchv1.JobStatus, t batchv1.JobConditionType, reason, message string, now time.Time) {
	setConditionStatus(st, t, corev1.ConditionTrue, reason, message, now)
}

// setConditionStatus sets condition t, keeping its transition time when
// the status does not change.
func setConditionStatus(st *batchv1.JobStatus, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) {
	mt := metav1.Time{Time: now}
	for i := range st.Conditions {
		cond := &st.Conditions[i]
		if cond.Type != t {
			continue
		}
		if cond.Status != status {
			cond.LastTransitionTime = mt
		}
		cond.Status, cond.Reason, cond.Message, cond.LastProbeTime = status, reason, message, mt
		return
	}
	st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: t, Status: status, Reason: reason, Message: message,
		LastProbeTime: mt, LastTransitionTime: mt})
}

// pastBackoffLimitOnFailure counts container restarts of OnFailure pods
// as failures, as upstream.
func pastBackoffLimitOnFailure(job *batchv1.Job, active []*corev1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range active {
		for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
			restarts += cs.RestartCount
		}
	}
	limit := ptr.Deref(job.Spec.BackoffLimit, 6)
	if limit == 0 {
		return restarts > 0
	}
	return restarts >= limit
}

func deadlineExceeded(job *batchv1.Job, now time.Time) bool {
	ads := job.Spec.ActiveDeadlineSeconds
	if ads == nil || job.Status.StartTime == nil || ptr.Deref(job.Spec.Suspend, false) {
		return false
	}
	return !now.Before(job.Status.StartTime.Add(time.Duration(*ads) * time.Second))
}

// completed reports whether job met its completions: every index of an
// Indexed Job, completions successes, or (without completions) one
// success and nothing running.
func completed(job *batchv1.Job, succeeded int32, active int) bool {
	if isIndexed(job) {
		return parseIndexes(job.Status.CompletedIndexes, completions(job)).Len() >= int(completions(job))
	}
	if job.Spec.Completions == nil {
		return succeeded > 0 && active == 0
	}
	return succeeded >= *job.Spec.Completions
}

func countReady(pods []*corev1.Pod) int32 {
	var n int32
	for _, p := range pods {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}
