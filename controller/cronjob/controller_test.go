package cronjob

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var created = time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)

func testCronJob(schedule string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "cj", Namespace: "default", UID: "uid-cj", CreationTimestamp: metav1.NewTime(created)},
		Spec: batchv1.CronJobSpec{Schedule: schedule, ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: ptr.To(false),
			SuccessfulJobsHistoryLimit: ptr.To[int32](3), FailedJobsHistoryLimit: ptr.To[int32](1)},
	}
}

func TestMostRecentScheduleTime(t *testing.T) {
	for _, tc := range []struct {
		name     string
		schedule string
		last     *time.Time
		deadline *int64
		now      time.Time
		want     string // "" for none
		missed   int
	}{
		{"not yet due", "0 * * * *", nil, nil, created.Add(time.Minute), "", 0},
		{"due", "0 * * * *", nil, nil, created.Add(time.Hour), "2026-03-01T11:00:00Z", 1},
		{"several missed: the latest", "*/10 * * * *", nil, nil, created.Add(35 * time.Minute), "2026-03-01T10:30:00Z", 3},
		{"after the last schedule time", "*/10 * * * *", ptr.To(created.Add(29*time.Minute + 30*time.Second)), nil, created.Add(35 * time.Minute), "", 0},
		{"startingDeadlineSeconds bounds the past", "*/10 * * * *", nil, ptr.To[int64](60), created.Add(35 * time.Minute), "", 0},
		{"@hourly", "@hourly", nil, nil, created.Add(2 * time.Hour), "2026-03-01T12:00:00Z", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cj := testCronJob(tc.schedule)
			cj.Spec.StartingDeadlineSeconds = tc.deadline
			if tc.last != nil {
				cj.Status.LastScheduleTime = &metav1.Time{Time: *tc.last}
			}
			sched, err := cron.ParseStandard(tc.schedule)
			if err != nil {
				t.Fatal(err)
			}
			got, missed := mostRecentScheduleTime(cj, tc.now, sched)
			gotS := ""
			if got != nil {
				gotS = got.UTC().Format(time.RFC3339)
			}
			if gotS != tc.want || missed != tc.missed {
				t.Fatalf("got %q (%d missed), want %q (%d)", gotS, missed, tc.want, tc.missed)
			}
		})
	}
}

// run starts the controller on a fake clientset at now and returns the
// client and the recorded events.
func run(t *testing.T, now time.Time, objs ...runtime.Object) (*fake.Clientset, *record.FakeRecorder) {
	t.Helper()
	client := fake.NewClientset()
	for _, o := range objs {
		if err := client.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(100)
	c, err := New(Config{Client: client, Informers: factory, Recorder: rec, Clock: testingclock.NewFakeClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return client, rec
}

func waitForEvent(t *testing.T, rec *record.FakeRecorder, prefix string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-rec.Events:
			if strings.HasPrefix(e, prefix) {
				return
			}
		case <-timeout:
			t.Fatalf("no event %q", prefix)
		}
	}
}

func jobNames(t *testing.T, client *fake.Clientset) []string {
	t.Helper()
	l, err := client.BatchV1().Jobs("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range l.Items {
		names = append(names, j.Name)
	}
	return names
}

func TestReplaceDeletesTheRunningJob(t *testing.T) {
	cj := testCronJob("*/5 * * * *")
	cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
	cj.Status.LastScheduleTime = &metav1.Time{Time: time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)}
	running := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "cj-29539325", Namespace: "default", UID: "uid-old",
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)}}}
	cj.Status.Active = []corev1.ObjectReference{jobRef(running)}
	client, rec := run(t, time.Date(2026, 3, 1, 10, 10, 1, 0, time.UTC), cj, running)
	waitForEvent(t, rec, "Normal SuccessfulDelete Deleted job cj-29539325")
	waitForEvent(t, rec, "Normal SuccessfulCreate Created job cj-29539330")
	if got := jobNames(t, client); len(got) != 1 || got[0] != "cj-29539330" {
		t.Fatalf("jobs %v", got)
	}
}

func TestALateTimeWithinStartingDeadlineStillRuns(t *testing.T) {
	cj := testCronJob("0 * * * *")
	cj.Spec.StartingDeadlineSeconds = ptr.To[int64](3600)
	cj.Status.LastScheduleTime = &metav1.Time{Time: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	// 10:00 was due 59 minutes ago: within the deadline it still runs.
	client, rec := run(t, time.Date(2026, 3, 1, 10, 59, 0, 0, time.UTC), cj)
	waitForEvent(t, rec, "Normal SuccessfulCreate Created job cj-29539320")
	if got := jobNames(t, client); len(got) != 1 {
		t.Fatalf("jobs %v", got)
	}

	// Times older than the deadline are never picked: see
	// TestMostRecentScheduleTime.
}

func TestSuspendedAndUnparseableCronJobsCreateNothing(t *testing.T) {
	suspended := testCronJob("* * * * *")
	suspended.Spec.Suspend = ptr.To(true)
	bad := testCronJob("* * * * *")
	bad.Name, bad.UID = "bad", "uid-bad"
	bad.Spec.TimeZone = ptr.To("Mars/Olympus")
	due := testCronJob("* * * * *")
	due.Name, due.UID = "due", "uid-due"
	// All three are due; only the one neither suspended nor broken
	// gets a Job.
	client, rec := run(t, created.Add(time.Hour), suspended, bad, due)
	waitForEvent(t, rec, `Warning UnknownTimeZone invalid timeZone: "Mars/Olympus"`)
	waitForEvent(t, rec, "Normal SuccessfulCreate Created job due-")
	if got := jobNames(t, client); len(got) != 1 || !strings.HasPrefix(got[0], "due-") {
		t.Fatalf("jobs %v", got)
	}
}

func TestAJobCreatedByALostSyncCountsAsScheduled(t *testing.T) {
	cj := testCronJob("*/5 * * * *")
	cj.Status.LastScheduleTime = &metav1.Time{Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	// The Job of 10:05 exists (its status write was lost) and finished.
	done := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "cj-29539325", Namespace: "default", UID: "uid-done",
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)}},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
	client, _ := run(t, time.Date(2026, 3, 1, 10, 6, 0, 0, time.UTC), cj, done)
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.BatchV1().CronJobs("default").Get(ctx, "cj", metav1.GetOptions{})
		return err == nil && got.Status.LastScheduleTime.Equal(&metav1.Time{Time: time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)}), err
	})
	if err != nil {
		t.Fatalf("lastScheduleTime not moved to 10:05: %v", err)
	}
	if got := jobNames(t, client); len(got) != 1 {
		t.Fatalf("jobs %v", got)
	}
}
