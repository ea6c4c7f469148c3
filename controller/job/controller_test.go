package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// fixture runs the controller on a fake clientset and a fake clock.
type fixture struct {
	t      *testing.T
	client *fake.Clientset
	clock  *testingclock.FakeClock
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	// The fake clientset generates neither names nor UIDs.
	var n atomic.Int32
	client.PrependReactor("create", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if p := a.(clienttesting.CreateAction).GetObject().(*corev1.Pod); p.Name == "" {
			p.Name = fmt.Sprintf("%s%05d", p.GenerateName, n.Add(1))
			p.UID = types.UID("uid-" + p.Name)
		}
		return false, nil, nil
	})
	// Nor does it refuse stale writes, which the controller, as every
	// controller, relies on: updates of Jobs carry a resourceVersion here.
	var rv atomic.Int64
	client.PrependReactor("update", "jobs", func(a clienttesting.Action) (bool, runtime.Object, error) {
		job := a.(clienttesting.UpdateAction).GetObject().(*batchv1.Job)
		cur, err := client.Tracker().Get(a.GetResource(), job.Namespace, job.Name)
		if err != nil {
			return true, nil, err
		}
		if cur.(*batchv1.Job).ResourceVersion != job.ResourceVersion {
			return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), job.Name, errors.New("stale"))
		}
		job.ResourceVersion = strconv.FormatInt(rv.Add(1), 10)
		return false, nil, nil
	})
	f := &fixture{t: t, client: client, clock: testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: factory, Recorder: record.NewFakeRecorder(100), Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return f
}

func (f *fixture) waitFor(what string, cond func(job *batchv1.Job, pods []corev1.Pod) bool) {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		job, err := f.client.BatchV1().Jobs("default").Get(ctx, "j", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		pods, err := f.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err == nil && cond(job, pods.Items), err
	})
	if err != nil {
		job, _ := f.client.BatchV1().Jobs("default").Get(context.Background(), "j", metav1.GetOptions{})
		f.t.Fatalf("waiting for %s: %v; job status %+v", what, err, job.Status)
	}
}

func (f *fixture) setPhase(stale corev1.Pod, phase corev1.PodPhase) {
	f.t.Helper()
	f.updatePodStatus(stale, func(st *corev1.PodStatus) { st.Phase = phase })
}

func (f *fixture) updatePodStatus(stale corev1.Pod, change func(*corev1.PodStatus)) {
	f.t.Helper()
	p, err := f.client.CoreV1().Pods("default").Get(context.Background(), stale.Name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	change(&p.Status)
	if _, err := f.client.CoreV1().Pods("default").UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) updateJob(change func(*batchv1.Job)) {
	f.t.Helper()
	job, err := f.client.BatchV1().Jobs("default").Get(context.Background(), "j", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	change(job)
	if _, err := f.client.BatchV1().Jobs("default").Update(context.Background(), job, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// testJob is a Job as the API server stores it after defaulting.
func testJob(completions, parallelism int32) *batchv1.Job {
	labels := map[string]string{batchv1.ControllerUidLabel: "uid-j", batchv1.JobNameLabel: "j"}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "default", UID: "uid-j"},
		Spec: batchv1.JobSpec{
			Completions: ptr.To(completions), Parallelism: ptr.To(parallelism), BackoffLimit: ptr.To[int32](6),
			CompletionMode: ptr.To(batchv1.NonIndexedCompletion), Suspend: ptr.To(false),
			PodReplacementPolicy: ptr.To(batchv1.TerminatingOrFailed),
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: "uid-j"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		},
	}
}

func active(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func hasTrue(job *batchv1.Job, t batchv1.JobConditionType, reason string) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue && c.Reason == reason {
			return true
		}
	}
	return false
}

func TestIndexedJobGivesEachPodItsIndexAndCountsIndexes(t *testing.T) {
	job := testJob(3, 2)
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	f := newFixture(t, job)
	var pods []corev1.Pod
	f.waitFor("pods for indexes 0 and 1", func(_ *batchv1.Job, all []corev1.Pod) bool { pods = all; return len(all) == 2 })
	byIndex := map[string]corev1.Pod{}
	for _, p := range pods {
		ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		byIndex[ix] = p
		if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != "j-"+ix ||
			p.Spec.Containers[0].Env[0].Name != "JOB_COMPLETION_INDEX" || p.GenerateName != "j-"+ix+"-" {
			t.Fatalf("pod %+v", p)
		}
	}
	f.setPhase(byIndex["1"], corev1.PodSucceeded)
	f.waitFor("index 1 completed and index 2 started", func(job *batchv1.Job, all []corev1.Pod) bool {
		running := map[string]bool{}
		for _, p := range active(all) {
			running[p.Annotations[batchv1.JobCompletionIndexAnnotation]] = true
		}
		return job.Status.CompletedIndexes == "1" && job.Status.Succeeded == 1 && running["0"] && running["2"]
	})
	f.waitFor("the running pods", func(_ *batchv1.Job, all []corev1.Pod) bool { pods = active(all); return len(pods) == 2 })
	for _, p := range pods {
		f.setPhase(p, corev1.PodSucceeded)
	}
	f.waitFor("Complete", func(job *batchv1.Job, _ []corev1.Pod) bool {
		return job.Status.CompletedIndexes == "0-2" && job.Status.Succeeded == 3 && hasTrue(job, batchv1.JobComplete, batchv1.JobReasonCompletionsReached)
	})
}

func TestSuspendedJobHasNoPodsUntilResumed(t *testing.T) {
	job := testJob(1, 1)
	job.Spec.Suspend = ptr.To(true)
	f := newFixture(t, job)
	f.waitFor("Suspended", func(job *batchv1.Job, pods []corev1.Pod) bool {
		return hasTrue(job, batchv1.JobSuspended, "JobSuspended") && len(pods) == 0 && job.Status.StartTime == nil
	})
	f.updateJob(func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(false) })
	f.waitFor("resumed with a pod", func(job *batchv1.Job, pods []corev1.Pod) bool {
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobSuspended && c.Status == corev1.ConditionFalse && c.Reason == "JobResumed" {
				return len(pods) == 1 && job.Status.StartTime != nil && job.Status.Active == 1
			}
		}
		return false
	})
	f.updateJob(func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(true) })
	f.waitFor("suspended again, the pod deleted and not counted as failed", func(job *batchv1.Job, pods []corev1.Pod) bool {
		return hasTrue(job, batchv1.JobSuspended, "JobSuspended") && len(pods) == 0 && job.Status.Failed == 0 && job.Status.Active == 0
	})
}

func TestActiveDeadlineFailsTheJob(t *testing.T) {
	job := testJob(1, 1)
	job.Spec.ActiveDeadlineSeconds = ptr.To[int64](30)
	f := newFixture(t, job)
	f.waitFor("a pod", func(job *batchv1.Job, pods []corev1.Pod) bool { return len(pods) == 1 && job.Status.StartTime != nil })
	f.clock.Step(31 * time.Second)
	f.waitFor("Failed with DeadlineExceeded", func(job *batchv1.Job, pods []corev1.Pod) bool {
		return hasTrue(job, batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded) &&
			hasTrue(job, batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded) && len(pods) == 0
	})
}

func TestFailedPodsAreReplacedAfterExponentialBackOff(t *testing.T) {
	f := newFixture(t, testJob(1, 1))
	var pods []corev1.Pod
	f.waitFor("a pod", func(_ *batchv1.Job, all []corev1.Pod) bool { pods = all; return len(all) == 1 })
	f.setPhase(pods[0], corev1.PodFailed)
	f.waitFor("the failure counted, no replacement yet", func(job *batchv1.Job, all []corev1.Pod) bool {
		return job.Status.Failed == 1 && job.Status.Active == 0 && len(active(all)) == 0
	})
	f.clock.Step(9 * time.Second)
	f.waitFor("still nothing after 9s", func(_ *batchv1.Job, all []corev1.Pod) bool { return len(active(all)) == 0 })
	f.clock.Step(time.Second)
	f.waitFor("a replacement after 10s", func(_ *batchv1.Job, all []corev1.Pod) bool {
		pods = active(all)
		return len(pods) == 1
	})
	f.setPhase(pods[0], corev1.PodFailed)
	f.waitFor("the second failure counted", func(job *batchv1.Job, all []corev1.Pod) bool {
		return job.Status.Failed == 2 && len(active(all)) == 0
	})
	f.clock.Step(10 * time.Second)
	f.waitFor("no replacement before 20s", func(_ *batchv1.Job, all []corev1.Pod) bool { return len(active(all)) == 0 })
	f.clock.Step(10 * time.Second)
	f.waitFor("a replacement after 20s", func(_ *batchv1.Job, all []corev1.Pod) bool { return len(active(all)) == 1 })
}

func TestFinishedJobIsDeletedAfterItsTTL(t *testing.T) {
	job := testJob(1, 1)
	job.Spec.TTLSecondsAfterFinished = ptr.To[int32](100)
	f := newFixture(t, job)
	var pods []corev1.Pod
	f.waitFor("a pod", func(_ *batchv1.Job, all []corev1.Pod) bool { pods = all; return len(all) == 1 })
	f.setPhase(pods[0], corev1.PodSucceeded)
	f.waitFor("Complete", func(job *batchv1.Job, _ []corev1.Pod) bool {
		return hasTrue(job, batchv1.JobComplete, batchv1.JobReasonCompletionsReached)
	})
	f.clock.Step(100 * time.Second)
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := f.client.BatchV1().Jobs("default").Get(ctx, "j", metav1.GetOptions{})
		return err != nil, nil
	}); err != nil {
		t.Fatal("the Job was not deleted after its TTL")
	}
}

func TestPodFailurePolicyIgnoresDisruptionsAndFailsTheJobOnAnExitCode(t *testing.T) {
	job := testJob(1, 1)
	job.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
	job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: ptr.To("c"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
	}}
	f := newFixture(t, job)
	var pods []corev1.Pod
	f.waitFor("a pod", func(_ *batchv1.Job, all []corev1.Pod) bool { pods = all; return len(all) == 1 })
	f.updatePodStatus(pods[0], func(st *corev1.PodStatus) {
		st.Phase = corev1.PodFailed
		st.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
	})
	f.waitFor("a replacement at once, the disruption not counted", func(job *batchv1.Job, all []corev1.Pod) bool {
		pods = active(all)
		return len(pods) == 1 && job.Status.Failed == 0
	})
	f.updatePodStatus(pods[0], func(st *corev1.PodStatus) {
		st.Phase = corev1.PodFailed
		st.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 42}}}}
	})
	want := "Container c for pod default/" + pods[0].Name + " failed with exit code 42 matching FailJob rule at index 0"
	f.waitFor("Failed by the policy", func(job *batchv1.Job, _ []corev1.Pod) bool {
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Reason == batchv1.JobReasonPodFailurePolicy && c.Message == want {
				return job.Status.Failed == 1
			}
		}
		return false
	})
}
