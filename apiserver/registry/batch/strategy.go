package batch

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ptrs "k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/core"
)

var batchV1 = batchv1.SchemeGroupVersion

// Limits of upstream's batch validation.
const (
	maxParallelismForIndexedJob = 100000
	completionsSoftLimit        = 100000
	// maxCronJobNameLength leaves room for the 11-character suffix of the
	// Jobs a CronJob creates.
	maxCronJobNameLength = 52
	// The labels upstream put on Job pod templates before 1.27; both sets
	// are still written.
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

// Group serves batch/v1.
type Group struct{}

// Resources are the Jobs and CronJobs.
func (Group) Resources(registry.Config) []*registry.Resource {
	all := []string{"all"}
	return []*registry.Resource{
		{GVR: batchV1.WithResource("cronjobs"), Kind: "CronJob", Singular: "cronjob", Namespaced: true,
			ShortNames: []string{"cj"}, Categories: all, Subresources: []string{"status"},
			NameValidation: apimachineryvalidation.NameIsDNSSubdomain, Generation: true,
			PrepareForCreate: defaultCronJob, PrepareForUpdate: func(obj, _ runtime.Object) { defaultCronJob(obj) },
			Validate: validateCronJob, Table: cronJobTable()},
		{GVR: batchV1.WithResource("jobs"), Kind: "Job", Singular: "job", Namespaced: true,
			Categories: all, Subresources: []string{"status"},
			NameValidation: apimachineryvalidation.NameIsDNSSubdomain, Generation: true,
			SelectableFields: jobFields, PrepareForCreate: prepareJob,
			PrepareForUpdate: func(obj, _ runtime.Object) { defaultJob(obj.(*batchv1.Job)) },
			Validate:         validateJob, Table: jobTable(),
			OrphanByDefault: true,
			OrphanWarning: "child pods are preserved by default when jobs are deleted; " +
				"set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning"},
	}
}

func jobFields(obj runtime.Object) fields.Set {
	return fields.Set{"status.successful": strconv.Itoa(int(obj.(*batchv1.Job).Status.Succeeded))}
}

// prepareJob defaults a new Job and, unless its selector is manual,
// generates the selector and template labels from its UID and name, as
// upstream's job strategy.
func prepareJob(obj runtime.Object) {
	job := obj.(*batchv1.Job)
	// Upstream's defaulting gives a Job without labels its template's
	// labels map itself, so the generated labels show on both.
	copyLabels := len(job.Labels) == 0 && job.Spec.Template.Labels != nil
	defaultJob(job)
	if !ptrs.Deref(job.Spec.ManualSelector, false) {
		generateJobSelector(job)
	}
	if copyLabels {
		job.Labels = map[string]string{}
		for k, v := range job.Spec.Template.Labels {
			job.Labels[k] = v
		}
	}
}

// defaultJob applies upstream's batch/v1 Job defaults.
func defaultJob(job *batchv1.Job) {
	spec := &job.Spec
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = ptrs.To[int32](1)
		spec.Parallelism = ptrs.To[int32](1)
	}
	if spec.Parallelism == nil {
		spec.Parallelism = ptrs.To[int32](1)
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = ptrs.To[int32](1<<31 - 1)
		} else {
			spec.BackoffLimit = ptrs.To[int32](6)
		}
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = ptrs.To(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = ptrs.To(false)
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = ptrs.To(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = ptrs.To(batchv1.TerminatingOrFailed)
		}
	}
	if spec.ManualSelector == nil {
		spec.ManualSelector = ptrs.To(false)
	}
	core.DefaultPodSpec(&spec.Template.Spec)
}

func generateJobSelector(job *batchv1.Job) {
	if job.Spec.Template.Labels == nil {
		job.Spec.Template.Labels = map[string]string{}
	}
	// Labels the user set are kept: a conflict fails validation. A name
	// that is no label value gets no job-name labels.
	for _, l := range []string{legacyJobNameLabel, batchv1.JobNameLabel} {
		if _, ok := job.Spec.Template.Labels[l]; !ok && len(validation.IsValidLabelValue(job.Name)) == 0 {
			job.Spec.Template.Labels[l] = job.Name
		}
	}
	for _, l := range []string{legacyControllerUIDLabel, batchv1.ControllerUidLabel} {
		if _, ok := job.Spec.Template.Labels[l]; !ok {
			job.Spec.Template.Labels[l] = string(job.UID)
		}
	}
	if job.Spec.Selector == nil {
		job.Spec.Selector = &metav1.LabelSelector{}
	}
	if job.Spec.Selector.MatchLabels == nil {
		job.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(job.UID)
	}
}

// validateJob is upstream's ValidateJob and ValidateJobUpdate.
func validateJob(obj, old runtime.Object) field.ErrorList {
	job := obj.(*batchv1.Job)
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if old == nil {
		errs = append(errs, validateGeneratedJobSelector(job)...)
	}
	errs = append(errs, validateJobSelector(&job.Spec, spec)...)
	errs = append(errs, validateJobSpec(&job.Spec, spec)...)
	var oldPodSpec *corev1.PodSpec
	if old != nil {
		errs = append(errs, validateJobSpecUpdate(job, old.(*batchv1.Job), spec)...)
		errs = append(errs, validateJobStatus(&job.Status)...)
		oldPodSpec = &old.(*batchv1.Job).Spec.Template.Spec
	}
	errs = append(errs, core.ValidateVolumeSupport(&job.Spec.Template.Spec, oldPodSpec, spec.Child("template", "spec"))...)
	return errs
}

// validateJobStatus holds upstream's non-negative status counters (a
// write through the main resource carries the stored status).
func validateJobStatus(st *batchv1.JobStatus) field.ErrorList {
	status := field.NewPath("status")
	var errs field.ErrorList
	errs = append(errs, nonNegative(status, "active", &st.Active)...)
	errs = append(errs, nonNegative(status, "succeeded", &st.Succeeded)...)
	errs = append(errs, nonNegative(status, "failed", &st.Failed)...)
	errs = append(errs, nonNegative(status, "ready", st.Ready)...)
	return append(errs, nonNegative(status, "terminating", st.Terminating)...)
}

// validateGeneratedJobSelector checks that a generated selector was not
// tampered with.
func validateGeneratedJobSelector(job *batchv1.Job) field.ErrorList {
	if ptrs.Deref(job.Spec.ManualSelector, false) {
		return nil
	}
	var errs field.ErrorList
	if job.UID == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "uid"), ""))
	}
	meta := field.NewPath("spec", "template", "metadata")
	expected := map[string]string{legacyControllerUIDLabel: string(job.UID), batchv1.ControllerUidLabel: string(job.UID)}
	want := []string{legacyControllerUIDLabel, batchv1.ControllerUidLabel}
	if len(validation.IsValidLabelValue(job.Name)) == 0 {
		expected[legacyJobNameLabel] = job.Name
		expected[batchv1.JobNameLabel] = job.Name
		want = append(want, legacyJobNameLabel, batchv1.JobNameLabel)
	}
	for _, l := range want {
		if got, ok := job.Spec.Template.Labels[l]; !ok {
			errs = append(errs, field.Required(meta.Child("labels").Key(l), "must be '"+expected[l]+"'"))
		} else if got != expected[l] {
			errs = append(errs, field.Invalid(meta.Child("labels").Key(l), got, "must be '"+expected[l]+"'"))
		}
	}
	if sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil && !sel.Matches(labels.Set(expected)) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "selector"), job.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

func validateJobSelector(spec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	if spec.Selector == nil {
		return field.ErrorList{field.Required(path.Child("selector"), "")}
	}
	errs := metavalidation.ValidateLabelSelector(spec.Selector, metavalidation.LabelSelectorValidationOptions{}, path.Child("selector"))
	if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !sel.Matches(labels.Set(spec.Template.Labels)) {
		errs = append(errs, field.Invalid(path.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	return errs
}

// validateJobSpec is upstream's validateJobSpec: everything but the
// selector, shared with CronJob templates.
func validateJobSpec(spec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegative(path, "parallelism", spec.Parallelism)...)
	errs = append(errs, nonNegative(path, "completions", spec.Completions)...)
	errs = append(errs, nonNegative(path, "backoffLimit", spec.BackoffLimit)...)
	errs = append(errs, nonNegative(path, "ttlSecondsAfterFinished", spec.TTLSecondsAfterFinished)...)
	if spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(*spec.ActiveDeadlineSeconds, path.Child("activeDeadlineSeconds"))...)
	}
	if mode := spec.CompletionMode; mode != nil {
		switch *mode {
		case batchv1.NonIndexedCompletion:
		case batchv1.IndexedCompletion:
			if spec.Completions == nil {
				errs = append(errs, field.Required(path.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
			}
			if spec.Parallelism != nil && *spec.Parallelism > maxParallelismForIndexedJob {
				errs = append(errs, field.Invalid(path.Child("parallelism"), *spec.Parallelism,
					fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxParallelismForIndexedJob, batchv1.IndexedCompletion)))
			}
			if spec.Completions != nil && spec.BackoffLimitPerIndex == nil && *spec.Completions > completionsSoftLimit {
				errs = append(errs, field.Invalid(path.Child("completions"), *spec.Completions,
					fmt.Sprintf("must be less than or equal to %d when completion mode is %s and used without backoffLimitPerIndex", completionsSoftLimit, batchv1.IndexedCompletion)))
			}
		default:
			errs = append(errs, field.NotSupported(path.Child("completionMode"), *mode,
				[]batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
		}
	}
	if p := spec.PodReplacementPolicy; p != nil && *p != batchv1.Failed && *p != batchv1.TerminatingOrFailed {
		errs = append(errs, field.NotSupported(path.Child("podReplacementPolicy"), *p,
			[]batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}))
	}
	tmpl := path.Child("template")
	errs = append(errs, metavalidation.ValidateLabels(spec.Template.Labels, tmpl.Child("metadata", "labels"))...)
	errs = append(errs, core.ValidatePodSpec(&spec.Template.Spec, tmpl.Child("spec"))...)
	if rp := spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
		errs = append(errs, field.NotSupported(tmpl.Child("spec", "restartPolicy"), rp,
			[]corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	return errs
}

// validateJobSpecUpdate holds upstream's immutable Job fields: the
// selector, the completion mode, completions (but for elastic Indexed
// Jobs, whose completions follow parallelism) and the template (but for
// the scheduling directives of a suspended Job that never started).
func validateJobSpecUpdate(job, old *batchv1.Job, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	immutable := func(name string, a, b any) {
		if !apiequality.Semantic.DeepEqual(a, b) {
			errs = append(errs, field.Invalid(path.Child(name), a, apimachineryvalidation.FieldImmutableErrorMsg))
		}
	}
	immutable("selector", job.Spec.Selector, old.Spec.Selector)
	immutable("completionMode", job.Spec.CompletionMode, old.Spec.CompletionMode)
	immutable("podFailurePolicy", job.Spec.PodFailurePolicy, old.Spec.PodFailurePolicy)
	immutable("backoffLimitPerIndex", job.Spec.BackoffLimitPerIndex, old.Spec.BackoffLimitPerIndex)
	immutable("managedBy", job.Spec.ManagedBy, old.Spec.ManagedBy)
	elastic := ptrs.Deref(job.Spec.CompletionMode, "") == batchv1.IndexedCompletion &&
		job.Spec.Completions != nil && job.Spec.Parallelism != nil && *job.Spec.Completions == *job.Spec.Parallelism &&
		old.Spec.Completions != nil && old.Spec.Parallelism != nil && *old.Spec.Completions == *old.Spec.Parallelism
	if !elastic {
		immutable("completions", job.Spec.Completions, old.Spec.Completions)
	}
	template := job.Spec.Template.DeepCopy()
	if ptrs.Deref(old.Spec.Suspend, false) && old.Status.StartTime == nil {
		// Queue controllers may move a suspended Job that never ran.
		template.Labels = old.Spec.Template.Labels
		template.Annotations = old.Spec.Template.Annotations
		template.Spec.NodeSelector = old.Spec.Template.Spec.NodeSelector
		template.Spec.Tolerations = old.Spec.Template.Spec.Tolerations
		template.Spec.Affinity = old.Spec.Template.Spec.Affinity
		template.Spec.SchedulingGates = old.Spec.Template.Spec.SchedulingGates
	}
	immutable("template", *template, old.Spec.Template)
	return errs
}

// defaultCronJob applies upstream's batch/v1 CronJob defaults; the Job
// template's pod spec is defaulted, its Job spec is not.
func defaultCronJob(obj runtime.Object) {
	cj := obj.(*batchv1.CronJob)
	if cj.Spec.ConcurrencyPolicy == "" {
		cj.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if cj.Spec.Suspend == nil {
		cj.Spec.Suspend = ptrs.To(false)
	}
	if cj.Spec.SuccessfulJobsHistoryLimit == nil {
		cj.Spec.SuccessfulJobsHistoryLimit = ptrs.To[int32](3)
	}
	if cj.Spec.FailedJobsHistoryLimit == nil {
		cj.Spec.FailedJobsHistoryLimit = ptrs.To[int32](1)
	}
	core.DefaultPodSpec(&cj.Spec.JobTemplate.Spec.Template.Spec)
}

// validateCronJob is upstream's ValidateCronJobCreate and
// ValidateCronJobUpdate (which skips the name length).
func validateCronJob(obj, old runtime.Object) field.ErrorList {
	cj := obj.(*batchv1.CronJob)
	var errs field.ErrorList
	if old == nil && len(cj.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name, fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	spec := field.NewPath("spec")
	if cj.Spec.Schedule == "" {
		errs = append(errs, field.Required(spec.Child("schedule"), ""))
	} else {
		errs = append(errs, validateSchedule(cj.Spec.Schedule, spec.Child("schedule"))...)
	}
	errs = append(errs, validateTimeZone(cj.Spec.TimeZone, spec.Child("timeZone"))...)
	if cj.Spec.StartingDeadlineSeconds != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(*cj.Spec.StartingDeadlineSeconds, spec.Child("startingDeadlineSeconds"))...)
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	case "":
		errs = append(errs, field.Required(spec.Child("concurrencyPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(spec.Child("concurrencyPolicy"), cj.Spec.ConcurrencyPolicy,
			[]batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}))
	}
	errs = append(errs, nonNegative(spec, "successfulJobsHistoryLimit", cj.Spec.SuccessfulJobsHistoryLimit)...)
	errs = append(errs, nonNegative(spec, "failedJobsHistoryLimit", cj.Spec.FailedJobsHistoryLimit)...)
	tmpl := spec.Child("jobTemplate")
	errs = append(errs, metavalidation.ValidateLabels(cj.Spec.JobTemplate.Labels, tmpl.Child("metadata", "labels"))...)
	errs = append(errs, apimachineryvalidation.ValidateAnnotations(cj.Spec.JobTemplate.Annotations, tmpl.Child("metadata", "annotations"))...)
	errs = append(errs, validateJobSpec(&cj.Spec.JobTemplate.Spec, tmpl.Child("spec"))...)
	var oldPodSpec *corev1.PodSpec
	if old != nil {
		oldPodSpec = &old.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template.Spec
	}
	errs = append(errs, core.ValidateVolumeSupport(&cj.Spec.JobTemplate.Spec.Template.Spec, oldPodSpec, tmpl.Child("spec", "template", "spec"))...)
	if ptrs.Deref(cj.Spec.JobTemplate.Spec.ManualSelector, false) {
		errs = append(errs, field.NotSupported(tmpl.Child("spec", "manualSelector"), cj.Spec.JobTemplate.Spec.ManualSelector, []string{"nil", "false"}))
	}
	return errs
}

// nonNegative checks an optional int32 field of parent.
func nonNegative(parent *field.Path, name string, v *int32) field.ErrorList {
	if v == nil {
		return nil
	}
	return apimachineryvalidation.ValidateNonnegativeField(int64(*v), parent.Child(name))
}

func validateSchedule(schedule string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if _, err := cron.ParseStandard(schedule); err != nil {
		errs = append(errs, field.Invalid(path, schedule, err.Error()))
	}
	if strings.Contains(schedule, "TZ") {
		errs = append(errs, field.Invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	}
	return errs
}

func validateTimeZone(tz *string, path *field.Path) field.ErrorList {
	switch {
	case tz == nil:
		return nil
	case *tz == "":
		return field.ErrorList{field.Invalid(path, tz, "timeZone must be nil or non-empty string")}
	case strings.EqualFold(*tz, "Local"):
		return field.ErrorList{field.Invalid(path, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")}
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		return field.ErrorList{field.Invalid(path, tz, err.Error())}
	}
	return nil
}

func hasJobCondition(job *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// jobStatus is the STATUS column of upstream's Job printer.
func jobStatus(job *batchv1.Job) string {
	switch {
	case hasJobCondition(job, batchv1.JobComplete):
		return "Complete"
	case hasJobCondition(job, batchv1.JobFailed):
		return "Failed"
	case job.DeletionTimestamp != nil:
		return "Terminating"
	case hasJobCondition(job, batchv1.JobSuspended):
		return "Suspended"
	case hasJobCondition(job, batchv1.JobFailureTarget):
		return "FailureTarget"
	case hasJobCondition(job, batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}

func jobTable() *registry.Table {
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Status", "string", 0, "Status of the job."),
			registry.Column("Completions", "string", 0, batchv1.JobSpec{}.SwaggerDoc()["completions"]),
			registry.Column("Duration", "string", 0, "Time required to complete the job."),
			registry.AgeColumn, core.ContainersColumn, core.ImagesColumn, core.SelectorColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			job := obj.(*batchv1.Job)
			var completions string
			switch parallelism := ptrs.Deref(job.Spec.Parallelism, 0); {
			case job.Spec.Completions != nil:
				completions = fmt.Sprintf("%d/%d", job.Status.Succeeded, *job.Spec.Completions)
			case parallelism > 1:
				completions = fmt.Sprintf("%d/1 of %d", job.Status.Succeeded, parallelism)
			default:
				completions = fmt.Sprintf("%d/1", job.Status.Succeeded)
			}
			var took string
			switch {
			case job.Status.StartTime == nil:
			case job.Status.CompletionTime == nil:
				took = duration.HumanDuration(now.Sub(job.Status.StartTime.Time))
			default:
				took = duration.HumanDuration(job.Status.CompletionTime.Sub(job.Status.StartTime.Time))
			}
			c, i, _ := core.TemplateCells(&job.Spec.Template, job.Spec.Selector)
			return []any{job.Name, jobStatus(job), completions, took, registry.Age(job.CreationTimestamp, now), c, i,
				metav1.FormatLabelSelector(job.Spec.Selector)}
		},
	}
}

func cronJobTable() *registry.Table {
	spec := batchv1.CronJobSpec{}.SwaggerDoc()
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn,
			registry.Column("Schedule", "string", 0, spec["schedule"]),
			registry.Column("Timezone", "string", 0, spec["timeZone"]),
			registry.Column("Suspend", "boolean", 0, spec["suspend"]),
			registry.Column("Active", "integer", 0, batchv1.CronJobStatus{}.SwaggerDoc()["active"]),
			registry.Column("Last Schedule", "date", 0, batchv1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]),
			registry.AgeColumn, core.ContainersColumn, core.ImagesColumn, core.SelectorColumn},
		Cells: func(obj runtime.Object, now time.Time) []any {
			cj := obj.(*batchv1.CronJob)
			last := registry.None
			if cj.Status.LastScheduleTime != nil {
				last = registry.Age(*cj.Status.LastScheduleTime, now)
			}
			suspend := "<unset>"
			if cj.Spec.Suspend != nil {
				suspend = strconv.FormatBool(*cj.Spec.Suspend)
			}
			tmpl := &cj.Spec.JobTemplate.Spec
			c, i, _ := core.TemplateCells(&tmpl.Template, tmpl.Selector)
			return []any{cj.Name, cj.Spec.Schedule, ptrs.Deref(cj.Spec.TimeZone, registry.None), suspend, int64(len(cj.Status.Active)),
				last, registry.Age(cj.CreationTimestamp, now), c, i, metav1.FormatLabelSelector(tmpl.Selector)}
		},
	}
}
