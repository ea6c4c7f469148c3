package kubelet_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/kubelet/internal/fake"
)

var (
	_ kubelet.ContainerRuntime = (*fake.Runtime)(nil)
	_ kubelet.ImageService     = (*fake.Runtime)(nil)
	_ kubelet.PodNetwork       = (*fake.Network)(nil)
)

const fakeImage = "docker.io/library/app:v1"

// fakeNode is a kubelet on the fake runtime and network against a real
// API server: no root, no containerd.
type fakeNode struct {
	t       *testing.T
	client  kubernetes.Interface
	runtime *fake.Runtime
	network *fake.Network
}

func startFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	api := apiservertest.Start(t, apiservertest.Options{})
	n := &fakeNode{t: t, client: api.Client, runtime: fake.NewRuntime(fakeImage), network: fake.NewNetwork(netip.MustParsePrefix("10.42.7.0/24"))}
	k, err := kubelet.New(kubelet.Config{
		Client:       api.Client,
		NodeName:     nodeName,
		NodeIP:       netip.MustParseAddr("127.0.0.1"),
		DataDir:      t.TempDir(),
		LogDir:       t.TempDir(),
		PodCIDR:      netip.MustParsePrefix("10.42.7.0/24"),
		Runtime:      n.runtime,
		Images:       n.runtime,
		Network:      n.network,
		ResyncPeriod: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.runtime.OnExit(k.ContainerExited)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kubelet Run: %v", err)
		}
	})
	select {
	case <-k.Ready():
	case err := <-done:
		t.Fatalf("kubelet ended before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("kubelet not ready after 30s")
	}
	return n
}

// create makes a pod bound to the node.
func (n *fakeNode) create(name, image string, restart corev1.RestartPolicy, policy corev1.PullPolicy) *corev1.Pod {
	n.t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			RestartPolicy:                 restart,
			TerminationGracePeriodSeconds: new(int64),
			AutomountServiceAccountToken:  new(bool),
			Containers:                    []corev1.Container{{Name: "app", Image: image, ImagePullPolicy: policy}},
		},
	}
	p, err := n.client.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		n.t.Fatal(err)
	}
	return p
}

// waitPod waits until the pod satisfies cond.
func (n *fakeNode) waitPod(name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	n.t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := n.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		n.t.Fatalf("pod %s never %s: %v; last status %+v", name, what, err, last.Status)
	}
	return last
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestFakeRuntimePodRunsAndIsReady(t *testing.T) {
	n := startFakeNode(t)
	n.create("web", "app:v1", corev1.RestartPolicyAlways, corev1.PullIfNotPresent)
	p := n.waitPod("web", "Ready", ready)
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || !netip.MustParsePrefix("10.42.7.0/24").Contains(netip.MustParseAddr(p.Status.PodIP)) {
		t.Fatalf("phase %s, pod IP %q", p.Status.Phase, p.Status.PodIP)
	}
	cs := p.Status.ContainerStatuses
	if len(cs) != 1 || cs[0].State.Running == nil || !cs[0].Ready || cs[0].ImageID == "" || cs[0].ContainerID == "" {
		t.Fatalf("container status %+v", cs)
	}
	node, err := n.client.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := node.Status.NodeInfo.ContainerRuntimeVersion; v != "fake://1.0.0" {
		t.Errorf("node's runtime version %q", v)
	}
}

func TestFakeRuntimeCrashedContainerRestarts(t *testing.T) {
	n := startFakeNode(t)
	p := n.create("crasher", "app:v1", corev1.RestartPolicyAlways, corev1.PullIfNotPresent)
	n.waitPod("crasher", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	first := n.runtime.Running(string(p.UID))["app"]
	if err := n.runtime.Exit(first.ID, 3); err != nil {
		t.Fatal(err)
	}
	p = n.waitPod("crasher", "restarted", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount == 1 && cs[0].State.Running != nil
	})
	last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.ExitCode != 3 || last.Reason != "Error" {
		t.Fatalf("last termination state %+v", last)
	}
	if second := n.runtime.Running(string(p.UID))["app"]; second.ID == first.ID || second.Attempt != 1 {
		t.Fatalf("restarted container %+v after %+v", second, first)
	}
}

func TestFakeRuntimeCompletedPodSucceedsAndFreesItsAddress(t *testing.T) {
	n := startFakeNode(t)
	p := n.create("job", "app:v1", corev1.RestartPolicyNever, corev1.PullIfNotPresent)
	n.waitPod("job", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := n.runtime.Exit(n.runtime.Running(string(p.UID))["app"].ID, 0); err != nil {
		t.Fatal(err)
	}
	p = n.waitPod("job", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "Completed" || term.ExitCode != 0 {
		t.Fatalf("terminated state %+v", term)
	}
	waitUntilTrue(t, "the sandbox of a finished pod to go", func() bool { return !n.network.Has(string(p.UID)) })
}

func TestFakeRuntimeImageNeverPulledWaits(t *testing.T) {
	n := startFakeNode(t)
	n.create("missing", "app:v2", corev1.RestartPolicyAlways, corev1.PullNever)
	p := n.waitPod("missing", "waiting for the image", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ErrImageNeverPull"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; msg != `Container image "app:v2" is not present with pull policy of Never` {
		t.Fatalf("message %q", msg)
	}
}

func TestFakeRuntimeFailedPullBacksOff(t *testing.T) {
	n := startFakeNode(t)
	n.runtime.FailPulls("docker.io/library/app:v3", fmt.Errorf("registry unreachable"))
	n.create("pull", "app:v3", corev1.RestartPolicyAlways, corev1.PullIfNotPresent)
	n.waitPod("pull", "in ImagePullBackOff", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ImagePullBackOff"
	})
	n.runtime.FailPulls("docker.io/library/app:v3", nil)
	n.waitPod("pull", "Ready after the registry is back", ready)
}

func TestFakeRuntimeDeletedPodLeavesNothing(t *testing.T) {
	n := startFakeNode(t)
	p := n.create("gone", "app:v1", corev1.RestartPolicyAlways, corev1.PullIfNotPresent)
	n.waitPod("gone", "Ready", ready)
	if err := n.client.CoreV1().Pods("default").Delete(context.Background(), "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntilTrue(t, "the pod to be gone from the API", func() bool {
		_, err := n.client.CoreV1().Pods("default").Get(context.Background(), "gone", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	waitUntilTrue(t, "its containers and sandbox to go", func() bool {
		return n.runtime.Count() == 0 && !n.network.Has(string(p.UID))
	})
}

func waitUntilTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	}); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
