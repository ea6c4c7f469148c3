package rootcacertpublisher

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// testCA is a freshly made self-signed CA certificate, PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tinykube-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
}

func start(t *testing.T, client kubernetes.Interface, ca []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: factory, RootCA: ca, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
}

// waitPublished waits until ns has kube-root-ca.crt with exactly the CA
// and the description, and returns it.
func waitPublished(t *testing.T, client kubernetes.Interface, ns string, ca []byte) *corev1.ConfigMap {
	t.Helper()
	var cm *corev1.ConfigMap
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		cm, err = client.CoreV1().ConfigMaps(ns).Get(ctx, ConfigMapName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return len(cm.Data) == 1 && cm.Data["ca.crt"] == string(ca) && cm.Annotations["kubernetes.io/description"] == Description, nil
	})
	if err != nil {
		t.Fatalf("kube-root-ca.crt in %s: got %+v (%v)", ns, cm, err)
	}
	return cm
}

func TestEveryNamespaceGetsTheRootCA(t *testing.T) {
	ca := testCA(t)
	client := fake.NewClientset(namespace("existing"))
	start(t, client, ca)
	waitPublished(t, client, "existing", ca)
	if _, err := client.CoreV1().Namespaces().Create(context.Background(), namespace("created"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, client, "created", ca)
}

func TestPublishedConfigMapIsRepaired(t *testing.T) {
	ca := testCA(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		damage func(cm *corev1.ConfigMap)
	}{
		{"changed CA", func(cm *corev1.ConfigMap) { cm.Data["ca.crt"] = "not a CA" }},
		{"extra key", func(cm *corev1.ConfigMap) { cm.Data["extra"] = "x" }},
		{"removed key", func(cm *corev1.ConfigMap) { cm.Data = nil }},
		{"removed description", func(cm *corev1.ConfigMap) { delete(cm.Annotations, DescriptionAnnotation) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(namespace("ns1"))
			start(t, client, ca)
			cm := waitPublished(t, client, "ns1", ca).DeepCopy()
			tc.damage(cm)
			cm.Labels = map[string]string{"mine": "yes"}
			if _, err := client.CoreV1().ConfigMaps("ns1").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			got := waitPublished(t, client, "ns1", ca)
			if got.Labels["mine"] != "yes" {
				t.Errorf("labels %v: the user's label was dropped", got.Labels)
			}
		})
	}
}

func TestDeletedConfigMapIsRecreated(t *testing.T) {
	ca := testCA(t)
	client := fake.NewClientset(namespace("ns1"))
	start(t, client, ca)
	waitPublished(t, client, "ns1", ca)
	if err := client.CoreV1().ConfigMaps("ns1").Delete(context.Background(), ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, client, "ns1", ca)
}

func TestTerminatingNamespaceGetsNoConfigMap(t *testing.T) {
	ca := testCA(t)
	going := namespace("going")
	going.Status.Phase = corev1.NamespaceTerminating
	client := fake.NewClientset(going, namespace("marker"))
	start(t, client, ca)
	// Both namespaces were queued at start; two workers may still be on
	// "going" when marker is done, so wait for the queue to drain by
	// publishing in a third namespace created afterwards.
	waitPublished(t, client, "marker", ca)
	if _, err := client.CoreV1().Namespaces().Create(context.Background(), namespace("after"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, client, "after", ca)
	_, err := client.CoreV1().ConfigMaps("going").Get(context.Background(), ConfigMapName, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("terminating namespace: got err %v, want NotFound", err)
	}
}

func TestNewRefusesABadRootCA(t *testing.T) {
	ca := testCA(t)
	key := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	tests := []struct {
		name string
		ca   []byte
		ok   bool
	}{
		{"one certificate", ca, true},
		{"a bundle of two", append(append([]byte{}, ca...), ca...), true},
		{"empty", nil, false},
		{"not PEM", []byte("hello"), false},
		{"a private key", key, false},
		{"certificate then garbage", append(append([]byte{}, ca...), "junk"...), false},
		{"corrupt certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			_, err := New(Config{Client: client, Informers: informers.NewSharedInformerFactory(client, 0), RootCA: tc.ca})
			if (err == nil) != tc.ok {
				t.Fatalf("New: err %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
