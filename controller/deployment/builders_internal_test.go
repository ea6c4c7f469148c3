package deployment

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

type dBuilder struct{ d *appsv1.Deployment }

// makeD is a Deployment with the API server's defaults filled in, as the
// fake clientset does not default.
func makeD(replicas int32) *dBuilder {
	surge, unavail := intstr.FromString("25%"), intstr.FromString("25%")
	return &dBuilder{&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "web-uid", Generation: 1,
			CreationTimestamp: metav1.NewTime(t0)},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: *webTemplate("web:1"),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}},
			RevisionHistoryLimit:    ptr.To[int32](10),
			ProgressDeadlineSeconds: ptr.To[int32](600),
		},
	}}
}

func webTemplate(image string) *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}
}

func (b *dBuilder) image(i string) *dBuilder { b.d.Spec.Template = *webTemplate(i); return b }
func (b *dBuilder) paused() *dBuilder        { b.d.Spec.Paused = true; return b }
func (b *dBuilder) history(n int32) *dBuilder {
	b.d.Spec.RevisionHistoryLimit = ptr.To(n)
	return b
}
func (b *dBuilder) status(s appsv1.DeploymentStatus) *dBuilder { b.d.Status = s; return b }
func (b *dBuilder) annotate(k, v string) *dBuilder {
	if b.d.Annotations == nil {
		b.d.Annotations = map[string]string{}
	}
	b.d.Annotations[k] = v
	return b
}
func (b *dBuilder) obj() *appsv1.Deployment { return b.d }

type rsBuilder struct{ rs *appsv1.ReplicaSet }

// makeRS is a ReplicaSet of d for image, as the controller would have
// made it, with spec replicas n, fully available.
func makeRS(d *appsv1.Deployment, image string, n int32, revision string, created time.Time) *rsBuilder {
	t := webTemplate(image)
	hash := templateHash(t, nil)
	t.Labels = withLabel(t.Labels, PodTemplateHashLabel, hash)
	return &rsBuilder{&appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, UID: types.UID("rs-" + hash),
			Labels:            t.Labels,
			CreationTimestamp: metav1.NewTime(created),
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
			Annotations:       map[string]string{RevisionAnnotation: revision},
			Generation:        1,
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", PodTemplateHashLabel: hash}},
			Template: *t,
		},
		Status: appsv1.ReplicaSetStatus{Replicas: n, ReadyReplicas: n, AvailableReplicas: n, ObservedGeneration: 1,
			TerminatingReplicas: ptr.To[int32](0)},
	}}
}

func (b *rsBuilder) scaledFor(desired, most string) *rsBuilder {
	b.rs.Annotations[DesiredReplicasAnnotation] = desired
	b.rs.Annotations[MaxReplicasAnnotation] = most
	return b
}
func (b *rsBuilder) available(n int32) *rsBuilder {
	b.rs.Status.AvailableReplicas, b.rs.Status.ReadyReplicas = n, n
	return b
}
func (b *rsBuilder) obj() *appsv1.ReplicaSet { return b.rs }

// fixture is a Controller on the fake clientset, with real informers
// whose caches are synced before each sync call.
type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	recorder *record.FakeRecorder
	clock    *clocktesting.FakeClock
	ctrl     *Controller
	ctx      context.Context
}

func newFixture(t *testing.T, objects ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objects...)
	factory := informers.NewSharedInformerFactory(client, 0)
	f := &fixture{t: t, client: client, factory: factory, recorder: record.NewFakeRecorder(100),
		clock: clocktesting.NewFakeClock(t0.Add(time.Hour))}
	c, err := New(Config{Client: client, Informers: factory, Recorder: f.recorder, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.ctrl = c
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	f.ctx = ctx
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return f
}

// sync runs one sync of the Deployment "web" once the caches hold what the
// client holds.
func (f *fixture) sync() error {
	f.t.Helper()
	f.settle()
	return f.ctrl.sync(f.ctx, "default/web")
}

// settle waits until the informer caches hold what the fake client holds.
func (f *fixture) settle() {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(f.ctx, time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return f.cachesMatch(), nil })
	if err != nil {
		f.t.Fatal("informer caches did not catch up with the fake clientset")
	}
}

func (f *fixture) cachesMatch() bool {
	rss, _ := f.client.AppsV1().ReplicaSets("default").List(f.ctx, metav1.ListOptions{})
	cached, _ := f.ctrl.rsLister.List(everything())
	if len(rss.Items) != len(cached) {
		return false
	}
	for _, rs := range rss.Items {
		// The fake clientset keeps no resourceVersions: compare content.
		c, err := f.ctrl.rsLister.ReplicaSets("default").Get(rs.Name)
		if err != nil || !apiequality.Semantic.DeepEqual(c, &rs) {
			return false
		}
	}
	d, err := f.client.AppsV1().Deployments("default").Get(f.ctx, "web", metav1.GetOptions{})
	if err != nil {
		return true
	}
	c, err := f.ctrl.dLister.Deployments("default").Get("web")
	return err == nil && apiequality.Semantic.DeepEqual(c, d)
}

func (f *fixture) deployment() *appsv1.Deployment {
	f.t.Helper()
	d, err := f.client.AppsV1().Deployments("default").Get(f.ctx, "web", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) replicaSets() map[string]*appsv1.ReplicaSet {
	f.t.Helper()
	l, err := f.client.AppsV1().ReplicaSets("default").List(f.ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]*appsv1.ReplicaSet{}
	for i := range l.Items {
		out[l.Items[i].Spec.Template.Spec.Containers[0].Image] = &l.Items[i]
	}
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func everything() labels.Selector { return labels.Everything() }

type runtimeObject = runtime.Object

func toObjects(in []runtime.Object) []runtime.Object { return in }
