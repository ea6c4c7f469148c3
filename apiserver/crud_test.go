package apiserver

import (
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestTypedClientCreateGetUpdateDeleteConfigMap(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	created, err := cms.Create(ctx(t), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Labels: map[string]string{"app": "web"}},
		Data:       map[string]string{"color": "blue"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp.IsZero() {
		t.Fatalf("server-set metadata missing: %+v", created.ObjectMeta)
	}
	got, err := cms.Get(ctx(t), "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Data["color"] != "blue" || got.ResourceVersion != created.ResourceVersion {
		t.Fatalf("get returned %+v", got)
	}
	got.Data["color"] = "green"
	updated, err := cms.Update(ctx(t), got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.ResourceVersion == created.ResourceVersion {
		t.Fatalf("resourceVersion did not change on update")
	}
	// A write with the old resourceVersion is refused with upstream's 409.
	_, err = cms.Update(ctx(t), created, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) || err.Error() != `Operation cannot be fulfilled on configmaps "settings": the object has been modified; please apply your changes to the latest version and try again` {
		t.Fatalf("stale update: got %v", err)
	}
	list, err := cms.List(ctx(t), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := cms.Delete(ctx(t), "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := cms.Get(ctx(t), "settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) || err.Error() != `configmaps "settings" not found` {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestBootstrapCreatesSystemNamespacesAndKubernetesService(t *testing.T) {
	ts := newTestServer(t)
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		ns, err := ts.client.CoreV1().Namespaces().Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("namespace %s: %v", name, err)
		}
		if ns.Status.Phase != corev1.NamespaceActive {
			t.Fatalf("namespace %s phase %q", name, ns.Status.Phase)
		}
	}
	svc, err := ts.client.CoreV1().Services("default").Get(ctx(t), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.43.0.1" || svc.Spec.Ports[0].Port != 443 {
		t.Fatalf("kubernetes service: %+v", svc.Spec)
	}
	ep, err := ts.client.CoreV1().Endpoints("default").Get(ctx(t), "kubernetes", metav1.GetOptions{})
	if err != nil || ep.Subsets[0].Addresses[0].IP != "127.0.0.1" || ep.Subsets[0].Ports[0].Port != 6443 {
		t.Fatalf("kubernetes endpoints: %v %+v", err, ep)
	}
	if _, err := ts.client.DiscoveryV1().EndpointSlices("default").Get(ctx(t), "kubernetes", metav1.GetOptions{}); err != nil {
		t.Fatalf("kubernetes endpointslice: %v", err)
	}
	// Bootstrap again (a restart) changes nothing and fails on nothing.
	if err := ts.api.Bootstrap(ctx(t)); err != nil {
		t.Fatalf("second Bootstrap: %v", err)
	}
}

// Patches carry no resourceVersion, so concurrent ones are retried against
// fresh state and none is lost.
func TestConcurrentPatchesAreAllApplied(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const writers = 20
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"w%d":"x"}}}`, i)
			if _, err := cms.Patch(ctx(t), "shared", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Errorf("patch %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got, err := cms.Get(ctx(t), "shared", metav1.GetOptions{})
	if err != nil || len(got.Annotations) != writers {
		t.Fatalf("%v: %d of %d annotations", err, len(got.Annotations), writers)
	}
}
