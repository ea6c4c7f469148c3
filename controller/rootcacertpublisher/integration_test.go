package rootcacertpublisher

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

func TestRootCAOnTheRealAPIServer(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	ca := testCA(t)
	start(t, s.Client, ca)
	for _, ns := range []string{"default", "kube-system", "kube-public"} {
		waitPublished(t, s.Client, ns, ca)
	}
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := waitPublished(t, s.Client, "team-a", ca)

	// kubectl edit: the CA is restored.
	cm.Data["ca.crt"] = "tampered"
	if _, err := s.Client.CoreV1().ConfigMaps("team-a").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, s.Client, "team-a", ca)

	// kubectl delete, across an API server restart: it comes back.
	s.Restart()
	if err := s.Client.CoreV1().ConfigMaps("team-a").Delete(ctx, ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, s.Client, "team-a", ca)
}
