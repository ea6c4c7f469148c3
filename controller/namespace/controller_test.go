package namespace

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/metadata"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

var (
	podsGVR       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

func start(t *testing.T, client kubernetes.Interface, md metadata.Interface) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Metadata: md, Informers: factory, Recorder: record.NewFakeRecorder(100), RecheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
}

func terminatingNamespace(name string) *corev1.Namespace {
	now := metav1.Now()
	return &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, DeletionTimestamp: &now},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
	}
}

func partial(kind, namespace, name string, finalizers ...string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID("uid-" + namespace + "-" + name), Finalizers: finalizers},
	}
}

// fakes builds a clientset whose discovery lists pods and configmaps, and
// a metadata client holding objs.
func fakes(ns *corev1.Namespace, objs ...runtime.Object) (*fake.Clientset, *metadatafake.FakeMetadataClient) {
	client := fake.NewClientset(ns)
	client.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{
			{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"list", "delete", "deletecollection"}},
			{Name: "pods/status", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "update"}},
			{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: metav1.Verbs{"list", "delete"}},
			{Name: "nodes", Namespaced: false, Kind: "Node", Verbs: metav1.Verbs{"list", "delete"}},
		},
	}}
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	return client, metadatafake.NewSimpleMetadataClient(scheme, objs...)
}

func count(t *testing.T, md metadata.Interface, gvr schema.GroupVersionResource, ns string) int {
	t.Helper()
	l, err := md.Resource(gvr).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

func finalizers(ctx context.Context, client kubernetes.Interface, name string) ([]corev1.FinalizerName, error) {
	ns, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return ns.Spec.Finalizers, nil
}

func TestTerminatingNamespaceIsEmptiedThenFinalized(t *testing.T) {
	client, md := fakes(terminatingNamespace("gone"),
		partial("Pod", "gone", "p1"), partial("Pod", "gone", "p2"), partial("ConfigMap", "gone", "cm"),
		partial("Pod", "kept", "other"))
	start(t, client, md)
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		f, err := finalizers(ctx, client, "gone")
		return len(f) == 0, err
	})
	if err != nil {
		t.Fatalf("namespace not finalized: %v", err)
	}
	if n := count(t, md, podsGVR, "gone") + count(t, md, configMapsGVR, "gone"); n != 0 {
		t.Errorf("%d objects left in a finalized namespace", n)
	}
	if n := count(t, md, podsGVR, "kept"); n != 1 {
		t.Errorf("other namespace has %d pods, want 1 (untouched)", n)
	}
}

func TestContentWithFinalizersHoldsTheNamespace(t *testing.T) {
	client, md := fakes(terminatingNamespace("held"), partial("ConfigMap", "held", "cm", "example.com/hold"))
	// The fake metadata client deletes at once; make it behave like the
	// API server for objects with finalizers: mark, do not remove.
	md.PrependReactor("delete", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) { return true, nil, nil })
	start(t, client, md)
	var ns *corev1.Namespace
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		ns, err = client.CoreV1().Namespaces().Get(ctx, "held", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(ns.Status.Conditions, func(c corev1.NamespaceCondition) bool {
			return c.Type == corev1.NamespaceFinalizersRemaining && c.Status == corev1.ConditionTrue
		}), nil
	})
	if err != nil {
		t.Fatalf("no FinalizersRemaining condition: %v (%+v)", err, ns.Status.Conditions)
	}
	want := map[corev1.NamespaceConditionType]string{
		corev1.NamespaceContentRemaining:    "Some resources are remaining: configmaps. has 1 resource instances",
		corev1.NamespaceFinalizersRemaining: "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances",
	}
	for _, c := range ns.Status.Conditions {
		if m, ok := want[c.Type]; ok && c.Message != m {
			t.Errorf("%s: %q, want %q", c.Type, c.Message, m)
		}
	}
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		t.Error("namespace finalized while content remains")
	}
}

func TestActiveNamespaceIsLeftAlone(t *testing.T) {
	active := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "live"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}}
	client, md := fakes(active, partial("Pod", "live", "p1"))
	start(t, client, md)
	// Deleting a second, terminating namespace proves the worker ran.
	if _, err := client.CoreV1().Namespaces().Create(context.Background(), terminatingNamespace("marker"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		f, err := finalizers(ctx, client, "marker")
		return len(f) == 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, md, podsGVR, "live"); n != 1 {
		t.Errorf("active namespace lost its pods (%d left)", n)
	}
	if _, err := client.CoreV1().Namespaces().Get(context.Background(), "live", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Error("active namespace deleted")
	}
}
