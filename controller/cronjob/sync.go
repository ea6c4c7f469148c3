package cronjob

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
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

// scheduledTimestampAnnotation is the scheduled time a Job was created
// for, as upstream (1.28+) writes it.
const scheduledTimestampAnnotation = "batch.kubernetes.io/cronjob-scheduled-timestamp"

// tooManyMissed is upstream's threshold for the TooManyMissedTimes event.
const tooManyMissed = 100

// nextSyncDelay pads the wait for the next schedule time, as upstream's
// nextScheduleTimeDuration does, so the sync lands after it.
const nextSyncDelay = 100 * time.Millisecond

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	shared, err := c.cronJobLister.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	cj := shared.DeepCopy()
	jobs, err := c.ownedJobs(cj)
	if err != nil {
		return err
	}
	if err := c.reconcileActive(ctx, cj, jobs); err != nil {
		return err
	}
	requeueAfter, err := c.schedule(ctx, cj)
	if err != nil {
		return err
	}
	if err := c.removeOldJobs(ctx, cj, jobs); err != nil {
		return err
	}
	if !apiequality.Semantic.DeepEqual(shared.Status, cj.Status) {
		if _, err := c.client.BatchV1().CronJobs(ns).UpdateStatus(ctx, cj, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	if requeueAfter > 0 {
		c.queue.AddAfter(key, requeueAfter)
	}
	return nil
}

// ownedJobs are the Jobs of cj's namespace that cj controls.
func (c *Controller) ownedJobs(cj *batchv1.CronJob) ([]*batchv1.Job, error) {
	all, err := c.jobLister.Jobs(cj.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(j *batchv1.Job) bool {
		ref := metav1.GetControllerOf(j)
		return ref == nil || ref.UID != cj.UID
	}), nil
}

// reconcileActive makes status.active the running Jobs of cj, and
// lastSuccessfulTime the latest completion.
func (c *Controller) reconcileActive(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) error {
	seen := map[types.UID]bool{}
	for _, j := range jobs {
		seen[j.UID] = true
		finished, cond := finishedCondition(j)
		active := slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == j.UID })
		switch {
		case !finished && !active:
			cj.Status.Active = append(cj.Status.Active, jobRef(j))
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnexpectedJob", "Saw a job that the controller did not create or forgot: %s", j.Name)
		case finished && active:
			cj.Status.Active = slices.DeleteFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == j.UID })
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, condition: %v", j.Name, cond)
		}
		if finished && cond == batchv1.JobComplete && j.Status.CompletionTime != nil &&
			(cj.Status.LastSuccessfulTime == nil || j.Status.CompletionTime.After(cj.Status.LastSuccessfulTime.Time)) {
			cj.Status.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
		}
	}
	// A Job the cache does not show may be new or gone: ask.
	var kept []corev1.ObjectReference
	for _, r := range cj.Status.Active {
		if seen[r.UID] {
			kept = append(kept, r)
			continue
		}
		j, err := c.client.BatchV1().Jobs(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || (err == nil && j.UID != r.UID):
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "MissingJob", "Active job went missing: %v", r.Name)
		case err != nil:
			return err
		default:
			kept = append(kept, r)
		}
	}
	cj.Status.Active = kept
	return nil
}

// schedule creates the Job of the most recent due time, when there is
// one to create, and returns how long until the next time.
func (c *Controller) schedule(ctx context.Context, cj *batchv1.CronJob) (time.Duration, error) {
	if cj.DeletionTimestamp != nil {
		return 0, nil
	}
	spec := cj.Spec.Schedule
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %q: %s", *tz, err)
			return 0, nil
		}
		spec = "TZ=" + *tz + " " + spec
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return 0, nil
	}
	if ptr.Deref(cj.Spec.Suspend, false) {
		return 0, nil
	}
	now := c.clock.Now()
	next := sched.Next(now).Sub(now) + nextSyncDelay
	scheduled, missed := mostRecentScheduleTime(cj, now, sched)
	if missed > tooManyMissed {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes",
			"too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", missed)
	}
	if scheduled == nil {
		return next, nil
	}
	if sds := cj.Spec.StartingDeadlineSeconds; sds != nil && scheduled.Add(time.Duration(*sds)*time.Second).Before(now) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z))
		return next, nil
	}
	jobName := fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
	if slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.Name == jobName }) ||
		(cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Equal(&metav1.Time{Time: *scheduled})) {
		return next, nil // this time is done
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(cj.Status.Active) > 0 {
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return next, nil
		}
	case batchv1.ReplaceConcurrent:
		for _, r := range cj.Status.Active {
			if err := c.deleteJob(ctx, cj, r.Name, r.UID); err != nil {
				return 0, err
			}
		}
		cj.Status.Active = nil
	}
	job, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, newJob(cj, jobName, *scheduled), metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		// Created by an earlier sync whose status write was lost: that
		// time is done (reconcileActive puts the Job back in active).
		existing, err := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, jobName, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		if ref := metav1.GetControllerOf(existing); ref != nil && ref.UID == cj.UID {
			cj.Status.LastScheduleTime = &metav1.Time{Time: *scheduled}
		}
		return next, nil
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return 0, err
	}
	c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", job.Name)
	cj.Status.Active = append(cj.Status.Active, jobRef(job))
	cj.Status.LastScheduleTime = &metav1.Time{Time: *scheduled}
	return next, nil
}

// mostRecentScheduleTime is the latest schedule time in (earliest, now],
// earliest being the last schedule time (or creation) and no older than
// startingDeadlineSeconds; missed is how many times fell in that range.
func mostRecentScheduleTime(cj *batchv1.CronJob, now time.Time, sched cron.Schedule) (*time.Time, int) {
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	if sds := cj.Spec.StartingDeadlineSeconds; sds != nil {
		if floor := now.Add(-time.Duration(*sds) * time.Second); floor.After(earliest) {
			earliest = floor
		}
	}
	var last *time.Time
	missed := 0
	for t := sched.Next(earliest); !t.After(now); t = sched.Next(t) {
		last = &t
		missed++
	}
	return last, missed
}

// newJob is cj's Job for the scheduled time.
func newJob(cj *batchv1.CronJob, name string, scheduled time.Time) *batchv1.Job {
	tmpl := cj.Spec.JobTemplate.DeepCopy()
	annotations := tmpl.Annotations
	if annotations == nil {
		annotations = map[string]string{}
	}
	at := scheduled
	if tz := cj.Spec.TimeZone; tz != nil {
		if loc, err := time.LoadLocation(*tz); err == nil {
			at = at.In(loc)
		}
	}
	annotations[scheduledTimestampAnnotation] = at.Format(time.RFC3339)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       cj.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)},
		},
		Spec: tmpl.Spec,
	}
}

func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: "Job", Namespace: j.Namespace, Name: j.Name, UID: j.UID,
		APIVersion: batchv1.SchemeGroupVersion.String(), ResourceVersion: j.ResourceVersion}
}

// finishedCondition reports whether j is Complete or Failed, and which.
func finishedCondition(j *batchv1.Job) (bool, batchv1.JobConditionType) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

// removeOldJobs deletes the oldest finished Jobs beyond the history
// limits.
func (c *Controller) removeOldJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) error {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		switch _, cond := finishedCondition(j); cond {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	for _, h := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit == nil || len(h.jobs) <= int(*h.limit) {
			continue
		}
		// Oldest first by start time, then name, as upstream (unstarted
		// Jobs last).
		slices.SortFunc(h.jobs, func(a, b *batchv1.Job) int {
			switch {
			case a.Status.StartTime == nil && b.Status.StartTime == nil:
				return strings.Compare(a.Name, b.Name)
			case a.Status.StartTime == nil:
				return 1
			case b.Status.StartTime == nil:
				return -1
			}
			if d := a.Status.StartTime.Compare(b.Status.StartTime.Time); d != 0 {
				return d
			}
			return strings.Compare(a.Name, b.Name)
		})
		for _, j := range h.jobs[:len(h.jobs)-int(*h.limit)] {
			if err := c.deleteJob(ctx, cj, j.Name, j.UID); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteJob deletes a Job of cj and its pods (background).
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, name string, uid types.UID) error {
	err := c.client.BatchV1().Jobs(cj.Namespace).Delete(ctx, name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		return err
	}
	c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", name)
	return nil
}
