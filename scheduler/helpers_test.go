package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
)

// cluster is a real API server with a running scheduler.
type cluster struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
	sched  *Scheduler
	api    *apiservertest.Server
}

// testConfig is the scheduler's Config plus the API server's rest.Config,
// for tests that build their own client.
type testConfig struct {
	Config
	restConfig *rest.Config
}

func startCluster(t *testing.T, mutate ...func(*testConfig)) *cluster {
	t.Helper()
	s := apiservertest.Start(t, apiservertest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	cfg := testConfig{Config: Config{Client: s.Client, Informers: factory, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}, restConfig: s.Config}
	for _, m := range mutate {
		m(&cfg)
	}
	sched, err := New(cfg.Config)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sched.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		factory.Shutdown()
	})
	select {
	case <-sched.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("scheduler did not become ready")
	}
	return &cluster{t: t, ctx: ctx, client: s.Client, sched: sched, api: s}
}

func (c *cluster) createNode(n *corev1.Node) {
	c.t.Helper()
	n = n.DeepCopy()
	n.UID = ""
	status := n.Status
	created, err := c.client.CoreV1().Nodes().Create(c.ctx, n, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatalf("creating node %s: %v", n.Name, err)
	}
	// Status is reset on create, as upstream does; set it like a kubelet.
	created.Status = status
	if _, err := c.client.CoreV1().Nodes().UpdateStatus(c.ctx, created, metav1.UpdateOptions{}); err != nil {
		c.t.Fatalf("setting status of node %s: %v", n.Name, err)
	}
}

func (c *cluster) createPod(p *corev1.Pod) *corev1.Pod {
	c.t.Helper()
	p = p.DeepCopy()
	p.UID = ""
	created, err := c.client.CoreV1().Pods(p.Namespace).Create(c.ctx, p, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatalf("creating pod %s: %v", p.Name, err)
	}
	return created
}

// waitPod waits until cond holds for the pod, and returns it.
func (c *cluster) waitPod(ns, name string, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	c.t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(c.ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := c.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		c.t.Fatalf("pod %s/%s never %s; last: nodeName=%q conditions=%+v", ns, name, what, last.Spec.NodeName, last.Status.Conditions)
	}
	return last
}

func (c *cluster) waitBound(ns, name string) string {
	c.t.Helper()
	return c.waitPod(ns, name, "bound", func(p *corev1.Pod) bool { return p.Spec.NodeName != "" }).Spec.NodeName
}

// waitUnschedulable waits for PodScheduled=False/Unschedulable and returns
// its message.
func (c *cluster) waitUnschedulable(ns, name string) string {
	c.t.Helper()
	p := c.waitPod(ns, name, "marked unschedulable", func(p *corev1.Pod) bool {
		cond := scheduledCondition(p)
		return cond != nil && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable
	})
	return scheduledCondition(p).Message
}

func scheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// waitEvent waits for an event about the pod with reason and message.
func (c *cluster) waitEvent(ns, pod, reason, message string) {
	c.t.Helper()
	var seen []string
	err := wait.PollUntilContextTimeout(c.ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := c.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		seen = seen[:0]
		for _, e := range evs.Items {
			if e.InvolvedObject.Name != pod {
				continue
			}
			seen = append(seen, fmt.Sprintf("%s %s: %s", e.Type, e.Reason, e.Message))
			if e.Reason == reason && e.Message == message && e.Source.Component == corev1.DefaultSchedulerName {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		c.t.Fatalf("no event %s %q for pod %s; saw %q", reason, message, pod, seen)
	}
}
