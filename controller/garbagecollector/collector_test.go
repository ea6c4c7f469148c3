package garbagecollector

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
)

var (
	rsGVR   = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// objBuilder builds the metadata of one object.
type objBuilder struct{ m *metav1.PartialObjectMetadata }

func makeObj(apiVersion, kind, name string) objBuilder {
	return objBuilder{&metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: apiVersion, Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
	}}
}
func (b objBuilder) ownedBy(kind, apiVersion, name string) objBuilder {
	t := true
	b.m.OwnerReferences = append(b.m.OwnerReferences, metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name,
		UID: types.UID("uid-" + name), Controller: &t, BlockOwnerDeletion: &t})
	return b
}
func (b objBuilder) deleting(finalizers ...string) objBuilder {
	now := metav1.Now()
	b.m.DeletionTimestamp, b.m.Finalizers = &now, finalizers
	return b
}
func (b objBuilder) obj() *metav1.PartialObjectMetadata { return b.m }

func startFake(t *testing.T, objs ...runtime.Object) *metadatafake.FakeMetadataClient {
	t.Helper()
	client := fake.NewClientset()
	client.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"list", "watch", "delete", "patch", "get"}},
			{Name: "events", Namespaced: true, Kind: "Event", Verbs: metav1.Verbs{"list", "watch", "delete"}},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "replicasets", Namespaced: true, Kind: "ReplicaSet", Verbs: metav1.Verbs{"list", "watch", "delete", "patch", "get"}},
			{Name: "deployments", Namespaced: true, Kind: "Deployment", Verbs: metav1.Verbs{"list", "watch", "delete", "patch", "get"}},
		}},
	}
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	md := metadatafake.NewSimpleMetadataClient(scheme, objs...)
	c, err := New(Config{Client: client, Metadata: md, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return md
}

func names(t *testing.T, md *metadatafake.FakeMetadataClient, gvr schema.GroupVersionResource) map[string]*metav1.PartialObjectMetadata {
	t.Helper()
	l, err := md.Resource(gvr).Namespace("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*metav1.PartialObjectMetadata{}
	for i := range l.Items {
		out[l.Items[i].Name] = &l.Items[i]
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestDependentsOfAMissingOwnerAreDeletedInCascade(t *testing.T) {
	md := startFake(t,
		makeObj("apps/v1", "ReplicaSet", "orphan-rs").ownedBy("Deployment", "apps/v1", "gone").obj(),
		makeObj("v1", "Pod", "p1").ownedBy("ReplicaSet", "apps/v1", "orphan-rs").obj(),
		makeObj("v1", "Pod", "p2").ownedBy("ReplicaSet", "apps/v1", "orphan-rs").obj(),
		makeObj("apps/v1", "ReplicaSet", "kept-rs").obj(),
		makeObj("v1", "Pod", "kept").ownedBy("ReplicaSet", "apps/v1", "kept-rs").obj(),
	)
	waitUntil(t, "the orphaned chain to go", func() bool {
		return len(names(t, md, podsGVR)) == 1 && len(names(t, md, rsGVR)) == 1
	})
	if _, ok := names(t, md, podsGVR)["kept"]; !ok {
		t.Error("pod with a live owner deleted")
	}
}

func TestOrphanFinalizerReleasesDependents(t *testing.T) {
	md := startFake(t,
		makeObj("apps/v1", "ReplicaSet", "rs").deleting(metav1.FinalizerOrphanDependents).obj(),
		makeObj("v1", "Pod", "p1").ownedBy("ReplicaSet", "apps/v1", "rs").obj(),
	)
	waitUntil(t, "the orphan finalizer to be removed", func() bool {
		rs := names(t, md, rsGVR)["rs"]
		return rs != nil && len(rs.Finalizers) == 0
	})
	p := names(t, md, podsGVR)["p1"]
	if p == nil || len(p.OwnerReferences) != 0 {
		t.Errorf("orphaned pod: %+v, want it kept without ownerReferences", p)
	}
}

func TestForegroundOwnerKeepsItsFinalizerWhileBlockingDependentsExist(t *testing.T) {
	md := startFake(t,
		makeObj("apps/v1", "ReplicaSet", "rs").deleting(metav1.FinalizerDeleteDependents).obj(),
		makeObj("v1", "Pod", "p1").ownedBy("ReplicaSet", "apps/v1", "rs").obj(),
	)
	waitUntil(t, "the dependent to go and the finalizer after it", func() bool {
		rs := names(t, md, rsGVR)["rs"]
		return len(names(t, md, podsGVR)) == 0 && rs != nil && len(rs.Finalizers) == 0
	})
}
