package apiserver

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"
)

func makeJob(name string, restart corev1.RestartPolicy) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: restart,
			Containers:    []corev1.Container{{Name: "pi", Image: "perl:5.34"}},
		}}},
	}
}

func makeCronJob(name, schedule string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{Schedule: schedule, JobTemplate: batchv1.JobTemplateSpec{
			Spec: makeJob("", corev1.RestartPolicyOnFailure).Spec}},
	}
}

// invalidMessage is the message of a 422 Invalid answer.
func invalidMessage(t *testing.T, err error) string {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want 422 Invalid, got %v", err)
	}
	return err.Error()
}

func TestJobGetsUpstreamDefaultsAndGeneratedSelector(t *testing.T) {
	ts := newTestServer(t)
	job, err := ts.client.BatchV1().Jobs("default").Create(ctx(t), makeJob("pi", corev1.RestartPolicyNever), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := job.Spec
	if *s.Parallelism != 1 || *s.Completions != 1 || *s.BackoffLimit != 6 || *s.CompletionMode != batchv1.NonIndexedCompletion ||
		*s.Suspend || *s.ManualSelector || *s.PodReplacementPolicy != batchv1.TerminatingOrFailed || job.Generation != 1 {
		t.Fatalf("defaults missing: %+v", s)
	}
	uid := string(job.UID)
	if got := s.Selector.MatchLabels; len(got) != 1 || got[batchv1.ControllerUidLabel] != uid {
		t.Fatalf("selector %v", s.Selector)
	}
	want := map[string]string{"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi", "controller-uid": uid, "job-name": "pi"}
	for k, v := range want {
		if s.Template.Labels[k] != v {
			t.Fatalf("template labels %v, want %v", s.Template.Labels, want)
		}
	}
}

func TestJobValidationAsUpstream(t *testing.T) {
	ts := newTestServer(t)
	jobs := ts.client.BatchV1().Jobs("default")
	_, err := jobs.Create(ctx(t), makeJob("pi", ""), metav1.CreateOptions{})
	if got, want := invalidMessage(t, err), `Job.batch "pi" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"`; got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	bad := makeJob("bad", corev1.RestartPolicyNever)
	bad.Spec.Parallelism = ptr(int32(-1))
	bad.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
	_, err = jobs.Create(ctx(t), bad, metav1.CreateOptions{})
	msg := invalidMessage(t, err)
	for _, want := range []string{"spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
		"spec.completions: Required value: when completion mode is Indexed"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("%q lacks %q", msg, want)
		}
	}

	job, err := jobs.Create(ctx(t), makeJob("pi", corev1.RestartPolicyNever), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job.Spec.Template.Spec.Containers[0].Image = "perl:5.36"
	job.Spec.Completions = ptr(int32(3))
	_, err = jobs.Update(ctx(t), job, metav1.UpdateOptions{})
	msg = invalidMessage(t, err)
	for _, want := range []string{"spec.completions: Invalid value: 3: field is immutable", "spec.template: Invalid value:", "field is immutable"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("%q lacks %q", msg, want)
		}
	}
	// Status counters are checked.
	job, _ = jobs.Get(ctx(t), "pi", metav1.GetOptions{})
	job.Status.Failed = -1
	_, err = jobs.UpdateStatus(ctx(t), job, metav1.UpdateOptions{})
	if msg := invalidMessage(t, err); !strings.Contains(msg, "status.failed: Invalid value: -1: must be greater than or equal to 0") {
		t.Fatalf("%q", msg)
	}
	// Parallelism may change.
	job, _ = jobs.Get(ctx(t), "pi", metav1.GetOptions{})
	job.Spec.Parallelism = ptr(int32(2))
	if _, err := jobs.Update(ctx(t), job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestJobTableAsKubectl(t *testing.T) {
	ts := newTestServer(t)
	job, err := ts.client.BatchV1().Jobs("default").Create(ctx(t), makeJob("pi", corev1.RestartPolicyNever), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	table := getTable(t, ts, "/apis/batch/v1/namespaces/default/jobs")
	if got := columnNames(table, 0); got != "NAME STATUS COMPLETIONS DURATION AGE" {
		t.Fatalf("columns %q", got)
	}
	if got := columnNames(table, 1); got != "NAME STATUS COMPLETIONS DURATION AGE CONTAINERS IMAGES SELECTOR" {
		t.Fatalf("wide columns %q", got)
	}
	row := table.Rows[0].Cells
	if row[1] != "Running" || row[2] != "0/1" || row[3] != "" || row[5] != "pi" || row[6] != "perl:5.34" ||
		row[7] != "batch.kubernetes.io/controller-uid="+string(job.UID) {
		t.Fatalf("row %v", row)
	}
}

func TestCronJobDefaultsValidationAndTable(t *testing.T) {
	ts := newTestServer(t)
	cronJobs := ts.client.BatchV1().CronJobs("default")
	cj, err := cronJobs.Create(ctx(t), makeCronJob("hello", "@hourly"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cj.Spec.ConcurrencyPolicy != batchv1.AllowConcurrent || *cj.Spec.Suspend || *cj.Spec.SuccessfulJobsHistoryLimit != 3 ||
		*cj.Spec.FailedJobsHistoryLimit != 1 || cj.Spec.JobTemplate.Spec.Template.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Fatalf("defaults missing: %+v", cj.Spec)
	}
	if cj.Spec.JobTemplate.Spec.BackoffLimit != nil {
		t.Fatalf("the job template's Job spec is not defaulted: %+v", cj.Spec.JobTemplate.Spec)
	}

	for _, tc := range []struct {
		name, schedule string
		tz             *string
		want           string
	}{
		{"bad-schedule", "61 * * * *", nil, `spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61`},
		{"tz-in-schedule", "CRON_TZ=UTC 0 * * * *", nil, `cannot use TZ or CRON_TZ in schedule, use timeZone field instead`},
		{"local", "@daily", ptr("Local"), `spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones`},
		{"unknown-zone", "@daily", ptr("Mars/Olympus"), `spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus`},
		{strings.Repeat("x", 53), "@daily", nil, `metadata.name: Invalid value: "` + strings.Repeat("x", 53) + `": must be no more than 52 characters`},
	} {
		cj := makeCronJob(tc.name, tc.schedule)
		cj.Spec.TimeZone = tc.tz
		_, err := cronJobs.Create(ctx(t), cj, metav1.CreateOptions{})
		if msg := invalidMessage(t, err); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q lacks %q", tc.name, msg, tc.want)
		}
	}

	table := getTable(t, ts, "/apis/batch/v1/namespaces/default/cronjobs")
	if got := columnNames(table, 0); got != "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE" {
		t.Fatalf("columns %q", got)
	}
	if row := table.Rows[0].Cells; row[1] != "@hourly" || row[2] != "<none>" || row[3] != "false" || row[4] != float64(0) || row[5] != "<none>" {
		t.Fatalf("row %v", row)
	}
}

func TestBatchDiscoveryNamesAsUpstream(t *testing.T) {
	ts := newTestServer(t)
	list, err := ts.client.Discovery().ServerResourcesForGroupVersion("batch/v1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]metav1.APIResource{}
	for _, r := range list.APIResources {
		got[r.Name] = r
	}
	if cj := got["cronjobs"]; len(cj.ShortNames) != 1 || cj.ShortNames[0] != "cj" || len(cj.Categories) != 1 || cj.Categories[0] != "all" {
		t.Fatalf("cronjobs %+v", cj)
	}
	for _, name := range []string{"jobs", "jobs/status", "cronjobs/status"} {
		if _, ok := got[name]; !ok {
			t.Fatalf("%s not served: %v", name, list.APIResources)
		}
	}
}

// kubectl explain job and kubectl apply of Jobs and CronJobs need their
// kinds in the batch/v1 OpenAPI v3 document.
func TestBatchOpenAPIHasJobAndCronJob(t *testing.T) {
	ts := newTestServer(t)
	dc, _ := discovery.NewDiscoveryClientForConfig(ts.config)
	doc, err := openapi3.NewRoot(dc.OpenAPIV3()).GVSpec(batchv1.SchemeGroupVersion)
	if err != nil {
		t.Fatalf("batch/v1 spec: %v", err)
	}
	for path, kind := range map[string]string{
		"/apis/batch/v1/namespaces/{namespace}/jobs/{name}":     "Job",
		"/apis/batch/v1/namespaces/{namespace}/cronjobs/{name}": "CronJob",
	} {
		item := doc.Paths.Paths[path]
		if item == nil || item.Patch == nil {
			t.Fatalf("no PATCH for %s", path)
		}
		if gvk, _ := item.Patch.Extensions["x-kubernetes-group-version-kind"].(map[string]any); gvk["kind"] != kind {
			t.Fatalf("%s: gvk %v", path, item.Patch.Extensions)
		}
	}
	job := doc.Components.Schemas["io.k8s.api.batch.v1.Job"]
	if job == nil || !strings.Contains(job.Description, "Job represents the configuration of a single job") {
		t.Fatalf("Job schema %+v", job)
	}
	if doc.Components.Schemas["io.k8s.api.batch.v1.CronJobSpec"] == nil {
		t.Fatal("no CronJobSpec schema")
	}
}
