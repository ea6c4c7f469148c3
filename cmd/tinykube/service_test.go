package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

func TestServiceURL(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx := context.Background()
	c := s.Client
	n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.200.0.1"}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []*corev1.Service{
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx-service"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80), NodePort: 30007},
				{Name: "https", Port: 443, TargetPort: intstr.FromInt32(443), NodePort: 30008},
			}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "internal"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		},
	} {
		if _, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := serviceURLs(ctx, c, "default", "nginx-service")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://10.200.0.1:30007", "http://10.200.0.1:30008"}; !slices.Equal(got, want) {
		t.Errorf("urls = %q, want %q", got, want)
	}
	if _, err := serviceURLs(ctx, c, "default", "internal"); err == nil || !strings.Contains(err.Error(), "ClusterIP") {
		t.Errorf("ClusterIP Service: err = %v, want one naming its type", err)
	}
	if _, err := serviceURLs(ctx, c, "default", "nope"); err == nil {
		t.Error("missing Service: no error")
	}
}
