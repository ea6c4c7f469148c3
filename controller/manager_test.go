package controller

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// startManager runs the manager against a fresh API server until the test
// ends.
func startManager(t testing.TB) *apiservertest.Server {
	t.Helper()
	return startManagerWith(t, ManagerConfig{NodeMonitorPeriod: 100 * time.Millisecond})
}

func startManagerWith(t testing.TB, cfg ManagerConfig) *apiservertest.Server {
	t.Helper()
	s := apiservertest.Start(t, apiservertest.Options{})
	cfg.RESTConfig = s.Config
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func eventually(t testing.TB, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return ok, err
	}); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

var nginxLabels = map[string]string{"app": "nginx"}

func nginx(ns string) (*appsv1.Deployment, *corev1.Service) {
	two := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx-deployment", Namespace: ns, Labels: nginxLabels},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: nginxLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: nginxLabels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.14.2", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}}}},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx-service", Namespace: ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: nginxLabels,
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}}},
	}
	return d, svc
}

func podsOf(ctx context.Context, cs kubernetes.Interface, ns string) ([]corev1.Pod, error) {
	l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// TestManagerRunsTheClusterLifecycle is the user's story with every
// controller in one manager: a namespace gets its ServiceAccount, a node
// its pod CIDR, the nginx Deployment its ReplicaSet and pods, the Service
// its endpoints as pods turn ready, and deleting the Deployment and then
// the namespace removes everything.
func TestManagerRunsTheClusterLifecycle(t *testing.T) {
	s := startManager(t)
	cs := s.Client
	ctx := context.Background()

	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "default ServiceAccount", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("shop").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})

	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod CIDR of n1", func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		return err == nil && n.Spec.PodCIDR == "10.42.0.0/24", err
	})

	d, svc := nginx("shop")
	if _, err := cs.AppsV1().Deployments("shop").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	eventually(t, "2 pods owned by a ReplicaSet owned by the Deployment", func(ctx context.Context) (bool, error) {
		var err error
		if pods, err = podsOf(ctx, cs, "shop"); err != nil || len(pods) != 2 {
			return false, err
		}
		rsList, err := cs.AppsV1().ReplicaSets("shop").List(ctx, metav1.ListOptions{})
		if err != nil || len(rsList.Items) != 1 {
			return false, err
		}
		rs := rsList.Items[0]
		if len(rs.OwnerReferences) != 1 || rs.OwnerReferences[0].Kind != "Deployment" {
			return false, nil
		}
		for _, p := range pods {
			if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != rs.UID {
				return false, nil
			}
		}
		return true, nil
	})

	// Play the kubelet: the pods run and turn ready.
	for i, p := range pods {
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = []string{"10.42.0.10", "10.42.0.11"}[i]
		p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "2 ready endpoints in the Service's EndpointSlice and Endpoints", func(ctx context.Context) (bool, error) {
		sl, err := cs.DiscoveryV1().EndpointSlices("shop").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=nginx-service"})
		if err != nil || len(sl.Items) != 1 {
			return false, err
		}
		ready := 0
		for _, e := range sl.Items[0].Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready++
			}
		}
		ep, err := cs.CoreV1().Endpoints("shop").Get(ctx, "nginx-service", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return ready == 2 && len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 2, nil
	})

	eventually(t, "ScalingReplicaSet and RegisteredNode events", func(ctx context.Context) (bool, error) {
		want := map[string]bool{"ScalingReplicaSet": false, "RegisteredNode": false}
		for _, ns := range []string{"shop", "default"} {
			l, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, e := range l.Items {
				if _, ok := want[e.Reason]; ok {
					want[e.Reason] = true
				}
			}
		}
		return want["ScalingReplicaSet"] && want["RegisteredNode"], nil
	})

	// kubectl delete deploy: background propagation, the collector
	// removes the ReplicaSet and its pods.
	if err := cs.AppsV1().Deployments("shop").Delete(ctx, d.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ReplicaSet and pods removed", func(ctx context.Context) (bool, error) {
		rsList, err := cs.AppsV1().ReplicaSets("shop").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pods, err := podsOf(ctx, cs, "shop")
		return len(rsList.Items) == 0 && len(pods) == 0, err
	})

	if err := cs.CoreV1().Namespaces().Delete(ctx, "shop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "namespace removed", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// idleCPU measures CPU per second of the whole test process (API server
// and manager) over window, with a Deployment and Service in place and
// nothing changing.
func idleCPU(t testing.TB, window time.Duration) time.Duration {
	s := startManager(t)
	ctx := context.Background()
	d, svc := nginx("default")
	if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pods and endpoints settled", func(ctx context.Context) (bool, error) {
		pods, err := podsOf(ctx, s.Client, "default")
		if err != nil || len(pods) != 2 {
			return false, err
		}
		_, err = s.Client.CoreV1().Endpoints("default").Get(ctx, "nginx-service", metav1.GetOptions{})
		return err == nil, err
	})
	// Let the start-up work (queues, event writes) drain first.
	<-time.After(time.Second)
	before := cpuTime(t)
	<-time.After(window)
	return (cpuTime(t) - before) * time.Second / window
}

func TestIdleControllersUseAlmostNoCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("measures CPU over seconds")
	}
	perSecond := idleCPU(t, 3*time.Second)
	t.Logf("idle CPU: %v per second", perSecond)
	// No hot loops: well under 2% of one core.
	if perSecond > 20*time.Millisecond {
		t.Errorf("idle manager and API server use %v CPU per second, want under 20ms", perSecond)
	}
}

func BenchmarkIdleCPU(b *testing.B) {
	for b.Loop() {
		perSecond := idleCPU(b, 5*time.Second)
		b.ReportMetric(float64(perSecond.Microseconds())/1000, "cpu-ms/s")
	}
}

// TestUnreachableNodesPodsLeaveTheEndpoints: a node stops renewing its
// lease; after the grace period its pod is marked not ready and the
// Service's endpoints stop sending traffic to it.
func TestUnreachableNodesPodsLeaveTheEndpoints(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	s := startManagerWith(t, ManagerConfig{Clock: clk, NodeMonitorPeriod: 20 * time.Millisecond, NodeMonitorGracePeriod: 40 * time.Second})
	cs := s.Client
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.NewTime(t0)}}}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	renew := metav1.NewMicroTime(t0)
	if _, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: coordinationv1.LeaseSpec{RenewTime: &renew}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, svc := nginx("default")
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: nginxLabels},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase, pod.Status.PodIP, pod.Status.PodIPs = corev1.PodRunning, "10.42.0.10", []corev1.PodIP{{IP: "10.42.0.10"}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	endpoints := func(ctx context.Context) (ready, notReady int, err error) {
		ep, err := cs.CoreV1().Endpoints("default").Get(ctx, "nginx-service", metav1.GetOptions{})
		if err != nil {
			return 0, 0, err
		}
		for _, ss := range ep.Subsets {
			ready += len(ss.Addresses)
			notReady += len(ss.NotReadyAddresses)
		}
		return ready, notReady, nil
	}
	eventually(t, "the pod in the endpoints", func(ctx context.Context) (bool, error) {
		r, _, err := endpoints(ctx)
		return r == 1, err
	})
	// Registered at t0 by the first pass (the event proves the pass).
	eventually(t, "node registered", func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=RegisteredNode"})
		return err == nil && len(l.Items) > 0, err
	})
	clk.Step(41 * time.Second)
	eventually(t, "the pod to leave the ready endpoints", func(ctx context.Context) (bool, error) {
		r, nr, err := endpoints(ctx)
		return r == 0 && nr == 1, err
	})
	n, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Spec.Taints) != 2 || n.Spec.Taints[0].Key != corev1.TaintNodeUnreachable {
		t.Errorf("unreachable node taints: %+v", n.Spec.Taints)
	}
}

// TestForegroundAndOrphanDeletionOfARealDeployment runs kubectl's
// --cascade=foreground and --cascade=orphan against the deployment and
// replicaset controllers and the collector together.
func TestForegroundAndOrphanDeletionOfARealDeployment(t *testing.T) {
	s := startManager(t)
	cs := s.Client
	ctx := context.Background()
	for _, tt := range []struct {
		ns       string
		policy   metav1.DeletionPropagation
		wantRS   int
		wantPods int
	}{
		{"fg", metav1.DeletePropagationForeground, 0, 0},
		{"orphan", metav1.DeletePropagationOrphan, 1, 2},
	} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tt.ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		d, _ := nginx(tt.ns)
		if _, err := cs.AppsV1().Deployments(tt.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, tt.ns+": 2 pods", func(ctx context.Context) (bool, error) {
			pods, err := podsOf(ctx, cs, tt.ns)
			return len(pods) == 2, err
		})
		policy := tt.policy
		if err := cs.AppsV1().Deployments(tt.ns).Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
			t.Fatal(err)
		}
		eventually(t, fmt.Sprintf("%s: deployment gone, %d ReplicaSets and %d pods left", tt.ns, tt.wantRS, tt.wantPods), func(ctx context.Context) (bool, error) {
			_, err := cs.AppsV1().Deployments(tt.ns).Get(ctx, d.Name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return false, nil
			}
			rs, err := cs.AppsV1().ReplicaSets(tt.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			pods, err := podsOf(ctx, cs, tt.ns)
			return len(rs.Items) == tt.wantRS && len(pods) == tt.wantPods, err
		})
		if tt.wantRS > 0 {
			rs, err := cs.AppsV1().ReplicaSets(tt.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if refs := rs.Items[0].OwnerReferences; len(refs) != 0 {
				t.Errorf("orphaned ReplicaSet keeps ownerReferences %v", refs)
			}
		}
	}
}
