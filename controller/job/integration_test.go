package job_test

import (
	"context"
	"slices"
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
	"k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/controller/job"
)

func start(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	c, err := job.New(job.Config{Client: client, Informers: factory,
		Recorder: b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: job.Name}), Workers: 2})
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

func newJob(name string, completions, parallelism, backoffLimit int32) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.JobSpec{
			Completions: ptr.To(completions), Parallelism: ptr.To(parallelism), BackoffLimit: ptr.To(backoffLimit),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "work", Image: "busybox"}}}},
		},
	}
}

// activePods lists the job's pods that have not finished.
func activePods(ctx context.Context, client kubernetes.Interface, j *batchv1.Job) ([]corev1.Pod, error) {
	l, err := client.CoreV1().Pods(j.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + j.Name})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(l.Items, func(p corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil
	}), nil
}

func setPhase(t *testing.T, client kubernetes.Interface, p corev1.Pod, phase corev1.PodPhase) {
	t.Helper()
	p.Status.Phase = phase
	if _, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), &p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func condition(j *batchv1.Job, ct batchv1.JobConditionType) *batchv1.JobCondition {
	for i, c := range j.Status.Conditions {
		if c.Type == ct && c.Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// runJob creates j on a real API server, starts the controller and
// waits for the Job's first two pods.
func runJob(t *testing.T, j *batchv1.Job) (*apiservertest.Server, *batchv1.Job, []corev1.Pod) {
	t.Helper()
	s := apiservertest.Start(t, apiservertest.Options{})
	j, err := s.Client.BatchV1().Jobs("default").Create(context.Background(), j, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s.Client)
	var pods []corev1.Pod
	poll(t, "2 running pods", func(ctx context.Context) (bool, error) {
		pods, err = activePods(ctx, s.Client, j)
		return err == nil && len(pods) == 2, err
	})
	return s, j, pods
}

func TestJobRunsItsCompletionsWithParallelismOnTheRealAPIServer(t *testing.T) {
	s, j, pods := runJob(t, newJob("work", 3, 2, 6))
	ctx := context.Background()
	var err error
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != j.UID || !*ref.BlockOwnerDeletion || !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			t.Fatalf("pod %s: owner %v finalizers %v", p.Name, p.OwnerReferences, p.Finalizers)
		}
	}
	first := pods[0]
	setPhase(t, s.Client, first, corev1.PodSucceeded)
	poll(t, "one success counted and a third pod", func(ctx context.Context) (bool, error) {
		got, err := s.Client.BatchV1().Jobs("default").Get(ctx, "work", metav1.GetOptions{})
		if err != nil || got.Status.Succeeded != 1 || got.Status.Active != 2 {
			return false, err
		}
		pods, err = activePods(ctx, s.Client, j)
		return err == nil && len(pods) == 2, err
	})
	// The counted pod was let go: it can be deleted without losing its count.
	if err := s.Client.CoreV1().Pods("default").Delete(ctx, first.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// A running pod deleted by hand counts as failed and is replaced.
	if err := s.Client.CoreV1().Pods("default").Delete(ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	setPhase(t, s.Client, pods[1], corev1.PodSucceeded)
	poll(t, "the replacement pod", func(ctx context.Context) (bool, error) {
		pods, err = activePods(ctx, s.Client, j)
		if err != nil || len(pods) != 1 || pods[0].Name == first.Name {
			return false, err
		}
		got, err := s.Client.BatchV1().Jobs("default").Get(ctx, "work", metav1.GetOptions{})
		return err == nil && got.Status.Succeeded == 2 && got.Status.Failed == 1, err
	})
	setPhase(t, s.Client, pods[0], corev1.PodSucceeded)
	var done *batchv1.Job
	poll(t, "Complete", func(ctx context.Context) (bool, error) {
		done, err = s.Client.BatchV1().Jobs("default").Get(ctx, "work", metav1.GetOptions{})
		return err == nil && condition(done, batchv1.JobComplete) != nil, err
	})
	if done.Status.Succeeded != 3 || done.Status.Failed != 1 || done.Status.Active != 0 || done.Status.CompletionTime == nil || done.Status.StartTime == nil ||
		condition(done, batchv1.JobSuccessCriteriaMet) == nil || condition(done, batchv1.JobComplete).Reason != batchv1.JobReasonCompletionsReached {
		t.Fatalf("status %+v", done.Status)
	}
	l, err := s.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Items {
		if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			t.Fatalf("pod %s keeps the tracking finalizer", p.Name)
		}
	}
}

func TestFailingJobStopsAtItsBackoffLimitOnTheRealAPIServer(t *testing.T) {
	s, _, pods := runJob(t, newJob("fail", 2, 2, 1))
	var err error
	for _, p := range pods {
		setPhase(t, s.Client, p, corev1.PodFailed)
	}
	var failed *batchv1.Job
	poll(t, "Failed", func(ctx context.Context) (bool, error) {
		failed, err = s.Client.BatchV1().Jobs("default").Get(ctx, "fail", metav1.GetOptions{})
		return err == nil && condition(failed, batchv1.JobFailed) != nil, err
	})
	cond := condition(failed, batchv1.JobFailed)
	if cond.Reason != batchv1.JobReasonBackoffLimitExceeded || cond.Message != "Job has reached the specified backoff limit" ||
		condition(failed, batchv1.JobFailureTarget) == nil || failed.Status.Failed != 2 || failed.Status.Succeeded != 0 ||
		failed.Status.CompletionTime != nil {
		t.Fatalf("status %+v", failed.Status)
	}
	poll(t, "a BackoffLimitExceeded event", func(ctx context.Context) (bool, error) {
		l, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=BackoffLimitExceeded"})
		return err == nil && len(l.Items) == 1, err
	})
}

func TestIndexedJobPodsAreAcceptedByTheRealAPIServer(t *testing.T) {
	j := newJob("indexed", 2, 2, 6)
	j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	s, _, pods := runJob(t, j)
	for _, p := range pods {
		setPhase(t, s.Client, p, corev1.PodSucceeded)
	}
	poll(t, "Complete with both indexes", func(ctx context.Context) (bool, error) {
		got, err := s.Client.BatchV1().Jobs("default").Get(ctx, "indexed", metav1.GetOptions{})
		return err == nil && got.Status.CompletedIndexes == "0-1" && got.Status.Succeeded == 2 && condition(got, batchv1.JobComplete) != nil, err
	})
}
