package servicelb

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	s := apiservertest.Start(t, apiservertest.Options{})
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	c, err := New(Config{Client: s.Client, Informers: factory})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	factory.Start(ctx.Done())
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
		<-done
	})
	return s.Client
}

func addNode(t *testing.T, c kubernetes.Interface, name, ip string, ready bool) {
	t.Helper()
	ctx := context.Background()
	n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func addLB(t *testing.T, c kubernetes.Interface, name string, port int32) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "http", Port: port}},
		},
	}
	if _, err := c.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func ingressOf(t *testing.T, c kubernetes.Interface, name string) []string {
	t.Helper()
	s, err := c.CoreV1().Services("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP)
	}
	return ips
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: not within 10s", what)
	}
}

func TestLoadBalancerGetsEveryReadyNode(t *testing.T) {
	c := start(t)
	addNode(t, c, "n1", "10.200.0.1", true)
	addNode(t, c, "n2", "10.200.0.2", true)
	addNode(t, c, "n3", "10.200.0.3", false)
	addLB(t, c, "web", 80)
	want := []string{"10.200.0.1", "10.200.0.2"}
	eventually(t, "ingress = the ready nodes", func() bool { return slices.Equal(ingressOf(t, c, "web"), want) })

	// a node joining shows up in the ingress
	addNode(t, c, "n4", "10.200.0.4", true)
	want = append(want, "10.200.0.4")
	eventually(t, "new node in ingress", func() bool { return slices.Equal(ingressOf(t, c, "web"), want) })
}

func TestPortTakenLeavesServicePendingWithEvent(t *testing.T) {
	c := start(t)
	addNode(t, c, "n1", "10.200.0.1", true)
	addLB(t, c, "first", 80)
	eventually(t, "first gets ingress", func() bool { return len(ingressOf(t, c, "first")) == 1 })
	addLB(t, c, "second", 80)
	eventually(t, "a PortInUse event for second", func() bool {
		evs, err := c.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "second" && e.Reason == ReasonPortInUse && e.Type == corev1.EventTypeWarning {
				return true
			}
		}
		return false
	})
	if got := ingressOf(t, c, "second"); len(got) != 0 {
		t.Fatalf("second has ingress %v while its port is taken", got)
	}
	addLB(t, c, "third", 8080)
	eventually(t, "a Service on another port is not held up", func() bool { return len(ingressOf(t, c, "third")) == 1 })

	if err := c.CoreV1().Services("default").Delete(context.Background(), "first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second gets the port once first is gone", func() bool {
		return slices.Equal(ingressOf(t, c, "second"), []string{"10.200.0.1"})
	})
}
