package cronjob_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/controller/cronjob"
)

func start(t *testing.T, client kubernetes.Interface, clk *testingclock.FakeClock) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	c, err := cronjob.New(cronjob.Config{Client: client, Informers: factory, Clock: clk,
		Recorder: b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: cronjob.Name})})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown(); b.Shutdown() })
}

func poll(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 20*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestCronJobRunsOnScheduleWithForbidAndHistoryLimitOnTheRealAPIServer(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *", ConcurrencyPolicy: batchv1.ForbidConcurrent, SuccessfulJobsHistoryLimit: ptr.To[int32](1),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "tick", Image: "busybox"}}}}}},
		},
	}
	cj, err := s.Client.BatchV1().CronJobs("default").Create(ctx, cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The schedule follows a fake clock that starts at the creation.
	clk := testingclock.NewFakeClock(cj.CreationTimestamp.Time)
	start(t, s.Client, clk)
	jobs := s.Client.BatchV1().Jobs("default")
	cronJobs := s.Client.BatchV1().CronJobs("default")

	// waitForJobs waits for exactly the Jobs named after these minutes.
	waitForJobs := func(minutes ...int64) {
		t.Helper()
		poll(t, fmt.Sprintf("jobs of minutes %v", minutes), func(ctx context.Context) (bool, error) {
			l, err := jobs.List(ctx, metav1.ListOptions{})
			if err != nil || len(l.Items) != len(minutes) {
				return false, err
			}
			for i, m := range minutes {
				if l.Items[i].Name != fmt.Sprintf("tick-%d", m) {
					return false, nil
				}
			}
			return true, nil
		})
	}
	complete := func(name string) {
		t.Helper()
		j, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.NewTime(clk.Now())
		j.Status.StartTime, j.Status.CompletionTime = &now, &now
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		if _, err := jobs.UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Each step lands a second past the schedule time: the controller
	// wakes a little after a time, as upstream.
	first := clk.Now().Truncate(time.Minute).Add(time.Minute)
	clk.SetTime(first.Add(time.Second))
	m1 := first.Unix() / 60
	waitForJobs(m1)
	poll(t, "the Job in status.active", func(ctx context.Context) (bool, error) {
		got, err := cronJobs.Get(ctx, "tick", metav1.GetOptions{})
		return err == nil && len(got.Status.Active) == 1 && got.Status.Active[0].Name == fmt.Sprintf("tick-%d", m1) &&
			got.Status.LastScheduleTime != nil && got.Status.LastScheduleTime.Unix() == first.Unix(), err
	})
	j, err := jobs.Get(ctx, fmt.Sprintf("tick-%d", m1), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(j); ref == nil || ref.UID != cj.UID || j.Annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] != first.UTC().Format(time.RFC3339) {
		t.Fatalf("job %+v", j.ObjectMeta)
	}

	// Forbid: the next minute starts nothing while the first Job runs.
	clk.SetTime(first.Add(time.Minute + time.Second))
	poll(t, "a JobAlreadyActive event", func(ctx context.Context) (bool, error) {
		l, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=JobAlreadyActive"})
		return err == nil && len(l.Items) > 0, err
	})
	waitForJobs(m1)

	// Once it completes, the time Forbid held back runs (as upstream, the
	// most recent missed time is still due), and the history keeps one
	// successful Job.
	complete(fmt.Sprintf("tick-%d", m1))
	waitForJobs(m1, m1+1)
	poll(t, "lastSuccessfulTime", func(ctx context.Context) (bool, error) {
		got, err := cronJobs.Get(ctx, "tick", metav1.GetOptions{})
		return err == nil && got.Status.LastSuccessfulTime != nil && len(got.Status.Active) == 1, err
	})
	complete(fmt.Sprintf("tick-%d", m1+1))
	waitForJobs(m1 + 1)
	clk.SetTime(first.Add(2*time.Minute + time.Second))
	waitForJobs(m1+1, m1+2)
}
