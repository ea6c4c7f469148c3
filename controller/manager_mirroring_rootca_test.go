package controller

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
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestManagerRefusesABadRootCA(t *testing.T) {
	rc := &rest.Config{Host: "http://127.0.0.1:1", TLSClientConfig: rest.TLSClientConfig{CAData: []byte("not a CA")}}
	if _, err := NewManager(ManagerConfig{RESTConfig: rc}); err == nil {
		t.Fatal("NewManager accepted a REST config CA that is not PEM")
	}
	if _, err := NewManager(ManagerConfig{RESTConfig: &rest.Config{Host: "http://127.0.0.1:1"}, RootCA: []byte("junk")}); err == nil {
		t.Fatal("NewManager accepted a RootCA that is not PEM")
	}
}

// What a user of a fresh cluster sees: kube-root-ca.crt in every
// namespace, and a selectorless Service's hand-written Endpoints mirrored
// to an EndpointSlice (while the selector Service's Endpoints, written by
// the endpoints controller, are not mirrored a second time).
func TestManagerPublishesTheRootCAAndMirrorsEndpoints(t *testing.T) {
	ca := selfSignedCA(t)
	s := startManagerWith(t, ManagerConfig{NodeMonitorPeriod: 100 * time.Millisecond, RootCA: ca})
	ctx := context.Background()
	eventually(t, "kube-root-ca.crt in default", func(ctx context.Context) (bool, error) {
		cm, err := s.Client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err == nil && cm.Data["ca.crt"] == string(ca), err
	})

	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, ext, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.50"}}, Ports: []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}}
	if _, err := s.Client.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, svc := nginx("default")
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the mirrored slice of ext and the endpoints of nginx-service", func(ctx context.Context) (bool, error) {
		if _, err := s.Client.CoreV1().Endpoints("default").Get(ctx, svc.Name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		l, err := s.Client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=ext"})
		return err == nil && len(l.Items) == 1 && len(l.Items[0].Endpoints) == 1 && l.Items[0].Endpoints[0].Addresses[0] == "192.0.2.50" &&
			l.Items[0].Labels[discoveryv1.LabelManagedBy] == "endpointslicemirroring-controller.k8s.io", err
	})
	mirrored, err := s.Client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name + "," + discoveryv1.LabelManagedBy + "=endpointslicemirroring-controller.k8s.io"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mirrored.Items) != 0 {
		t.Errorf("the endpoints controller's Endpoints were mirrored: %d slices", len(mirrored.Items))
	}
}
