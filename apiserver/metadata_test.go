package apiserver

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// The garbage collector and controller-runtime's metadata caches watch
// PartialObjectMetadata.
func TestMetadataInformerSyncsAndSeesChanges(t *testing.T) {
	ts := newTestServer(t)
	client, err := metadata.NewForConfig(ts.config)
	if err != nil {
		t.Fatal(err)
	}
	factory := metadatainformer.NewSharedInformerFactory(client, 0)
	informer := factory.ForResource(corev1.SchemeGroupVersion.WithResource("configmaps")).Informer()
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	syncCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), informer.HasSynced) {
		t.Fatal("metadata informer did not sync")
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owned", Labels: map[string]string{"x": "y"}}}
	if _, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx(t), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "metadata informer sees the new object", func() bool {
		obj, ok, _ := informer.GetStore().GetByKey("default/owned")
		return ok && obj.(*metav1.PartialObjectMetadata).Labels["x"] == "y"
	})
}
