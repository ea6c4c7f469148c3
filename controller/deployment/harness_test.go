package deployment_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/controller/deployment"
	"github.com/tinykube/tinykube/controller/replicaset"
)

// startControllers runs the deployment and replicaset controllers against
// client on one shared informer factory, as the controller manager does,
// until the returned stop function is called or the test ends.
func startControllers(t testing.TB, client kubernetes.Interface) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	dc, err := deployment.New(deployment.Config{
		Client:    client,
		Informers: factory,
		Recorder:  broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: deployment.Name}),
		Workers:   2,
	})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := replicaset.New(replicaset.Config{
		Client:    client,
		Informers: factory,
		Recorder:  broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: replicaset.Name}),
		Workers:   2,
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{}, 2)
	go func() { dc.Run(ctx); done <- struct{}{} }()
	go func() { rc.Run(ctx); done <- struct{}{} }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		<-done
		factory.Shutdown()
		broadcaster.Shutdown()
	}
	t.Cleanup(stop)
	return stop
}

// deploymentBuilder makes Deployments for tests; nginx is the classic
// example of the Kubernetes docs.
type deploymentBuilder struct{ d *appsv1.Deployment }

func nginx(replicas int32) *deploymentBuilder {
	labels := map[string]string{"app": "nginx"}
	return &deploymentBuilder{&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx-deployment", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "nginx", Image: "nginx:latest",
					Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				}}},
			},
		},
	}}
}

func (b *deploymentBuilder) name(n string) *deploymentBuilder { b.d.Name = n; return b }

func (b *deploymentBuilder) rolling(maxSurge, maxUnavailable intstr.IntOrString) *deploymentBuilder {
	b.d.Spec.Strategy = appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable},
	}
	return b
}

func (b *deploymentBuilder) recreate() *deploymentBuilder {
	b.d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	return b
}

func (b *deploymentBuilder) obj() *appsv1.Deployment { return b.d }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func listPods(ctx context.Context, client kubernetes.Interface, selector string) ([]corev1.Pod, error) {
	l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func listReplicaSets(ctx context.Context, client kubernetes.Interface) ([]appsv1.ReplicaSet, error) {
	l, err := client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// markReady does what the kubelet would: the pod runs and is ready.
func markReady(ctx context.Context, client kubernetes.Interface, p *corev1.Pod) error {
	p = p.DeepCopy()
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	_, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// markAllReady marks every pod matching selector ready.
func markAllReady(ctx context.Context, client kubernetes.Interface, selector string) error {
	pods, err := listPods(ctx, client, selector)
	if err != nil {
		return err
	}
	for i := range pods {
		if podReady(&pods[i]) || pods[i].DeletionTimestamp != nil {
			continue
		}
		if err := markReady(ctx, client, &pods[i]); err != nil {
			return fmt.Errorf("marking %s ready: %w", pods[i].Name, err)
		}
	}
	return nil
}

func getDeployment(ctx context.Context, client kubernetes.Interface, name string) (*appsv1.Deployment, error) {
	return client.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
}

// rolledOut is kubectl rollout status's test for a finished rollout.
func rolledOut(d *appsv1.Deployment) bool {
	want := *d.Spec.Replicas
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want
}
