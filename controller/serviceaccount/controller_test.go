package serviceaccount

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
}

// start runs the controller against client until the test ends.
func start(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: factory})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
}

func waitFor(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func hasDefault(client kubernetes.Interface, ns string) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, DefaultName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
}

func TestEveryNamespaceGetsADefaultServiceAccount(t *testing.T) {
	client := fake.NewClientset(namespace("existing"))
	start(t, client)
	waitFor(t, "default SA in an existing namespace", hasDefault(client, "existing"))

	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, namespace("created"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "default SA in a new namespace", hasDefault(client, "created"))
}

func TestDeletedDefaultServiceAccountIsRecreated(t *testing.T) {
	client := fake.NewClientset(namespace("ns1"))
	start(t, client)
	waitFor(t, "default SA", hasDefault(client, "ns1"))
	if err := client.CoreV1().ServiceAccounts("ns1").Delete(context.Background(), DefaultName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "default SA recreated", hasDefault(client, "ns1"))
}

func TestTerminatingNamespaceGetsNoServiceAccount(t *testing.T) {
	terminating := namespace("going")
	terminating.Status.Phase = corev1.NamespaceTerminating
	client := fake.NewClientset(terminating, namespace("marker"))
	start(t, client)
	// The marker namespace is handled by the same single worker; once its
	// SA exists the terminating one has been synced too (both were queued
	// at start).
	waitFor(t, "default SA in marker", hasDefault(client, "marker"))
	_, err := client.CoreV1().ServiceAccounts("going").Get(context.Background(), DefaultName, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("terminating namespace: got err %v, want NotFound", err)
	}
}

func TestDefaultServiceAccountsOnTheRealAPIServer(t *testing.T) {
	s := apiservertest.Start(t, apiservertest.Options{})
	start(t, s.Client)
	for _, ns := range []string{"default", "kube-system"} {
		waitFor(t, "default SA in "+ns, hasDefault(s.Client, ns))
	}
	if _, err := s.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "default SA in team-a", hasDefault(s.Client, "team-a"))
}
