package replicaset_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/controller/replicaset"
)

func start(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	c, err := replicaset.New(replicaset.Config{Client: client, Informers: factory,
		Recorder: b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: replicaset.Name}), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown(); b.Shutdown() })
}

func web(replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}},
			},
		},
	}
}

func poll(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestAdoptReleaseAndScaleOnTheRealAPIServer(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	pods := s.Client.CoreV1().Pods("default")
	// An orphan that the ReplicaSet will adopt.
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}},
	}
	if _, err := pods.Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Client.AppsV1().ReplicaSets("default").Create(ctx, web(3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s.Client)

	poll(t, "3 owned pods, orphan adopted", func(ctx context.Context) (bool, error) {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(l.Items) != 3 {
			return false, err
		}
		for _, p := range l.Items {
			ref := metav1.GetControllerOf(&p)
			if ref == nil || ref.UID != rs.UID {
				return false, nil
			}
		}
		got, err := s.Client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && got.Status.Replicas == 3 && got.Status.FullyLabeledReplicas == 3 && got.Status.ObservedGeneration == got.Generation, err
	})

	// Relabel the adopted pod out of the selector: it is released and
	// replaced.
	patch := []byte(`{"metadata":{"labels":{"app":"debug"}}}`)
	if _, err := pods.Patch(ctx, "orphan", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "released and replaced", func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil || len(p.OwnerReferences) != 0 {
			return false, err
		}
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(l.Items) == 3, err
	})

	// Scale down through the scale subresource.
	sc, err := s.Client.AppsV1().ReplicaSets("default").GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = 1
	sc.ResourceVersion = "" // as kubectl scale: no precondition
	if _, err := s.Client.AppsV1().ReplicaSets("default").UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "scaled to 1", func(ctx context.Context) (bool, error) {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(l.Items) != 1 {
			return false, err
		}
		got, err := s.Client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && got.Status.Replicas == 1, err
	})
	poll(t, "SuccessfulDelete events", func(ctx context.Context) (bool, error) {
		l, err := s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := 0
		for _, e := range l.Items {
			if e.Reason == "SuccessfulDelete" && e.Source.Component == replicaset.Name && e.InvolvedObject.Name == "web" {
				n += int(e.Count)
			}
		}
		return n == 2, nil
	})
}

// Pods on a node get a grace period when deleted: until the kubelet is
// done they count as terminatingReplicas, not replicas, and are replaced
// at once.
func TestTerminatingPodsAreReportedAndReplaced(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	rs := web(2)
	rs.Spec.Template.Spec.NodeName = "node-1"
	if _, err := s.Client.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start(t, s.Client)
	pods := s.Client.CoreV1().Pods("default")
	var first string
	poll(t, "2 pods", func(ctx context.Context) (bool, error) {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(l.Items) != 2 {
			return false, err
		}
		first = l.Items[0].Name
		return true, nil
	})
	if err := pods.Delete(ctx, first, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "a replacement and the terminating pod counted", func(ctx context.Context) (bool, error) {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(l.Items) != 3 {
			return false, err
		}
		got, err := s.Client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := got.Status
		return st.Replicas == 2 && st.TerminatingReplicas != nil && *st.TerminatingReplicas == 1, nil
	})
}
