package kubelet_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/kubelet/images"
	"github.com/tinykube/tinykube/kubelet/internal/nodetest"
	"github.com/tinykube/tinykube/kubelet/sandbox"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

const nodeName = "node-1"

// testNode is a kubelet on this host against the real API server, with its
// own containerd, pod bridge and data dir.
type testNode struct {
	t       testing.TB
	opts    []func(*kubelet.Config)
	api     *apiservertest.Server
	client  kubernetes.Interface
	dataDir string
	logDir  string
	bridge  string
	cidr    netip.Prefix
	cancel  context.CancelFunc
	done    chan error
	kubelet *kubelet.Kubelet
	// stopContainerd ends the node's own containerd, which runs from
	// before the kubelet starts until after it stops, as the agent runs
	// it; nil with an existing containerd.
	stopContainerd func()
}

// imagesOnce builds the test images once per test binary run.
var testImages = struct {
	server, busybox testimage.Image
	err             error
	built           bool
}{}

func buildImages(t testing.TB) (server, busybox testimage.Image) {
	t.Helper()
	if !testImages.built {
		testImages.built = true
		testImages.server, testImages.err = testimage.Server()
		if testImages.err == nil {
			testImages.busybox, testImages.err = testimage.Busybox()
		}
	}
	if testImages.err != nil {
		t.Fatal(testImages.err)
	}
	return testImages.server, testImages.busybox
}

// startNode runs a kubelet. The test images are placed in the images dir
// so the kubelet imports them at start, as an air-gapped install does.
func startNode(t testing.TB, api *apiservertest.Server, opts ...func(*kubelet.Config)) *testNode {
	t.Helper()
	nodetest.RequireRoot(t, "ip")
	if api == nil {
		api = apiservertest.Start(t, apiservertest.Options{})
	}
	bridge, cidr := nodetest.PodNetwork(t)
	n := &testNode{t: t, opts: opts, api: api, client: api.Client, dataDir: nodetest.ShortTempDir(t), logDir: t.TempDir(), bridge: bridge, cidr: cidr}
	server, busybox := buildImages(t)
	imgDir := kubelet.ImagesDir(n.dataDir)
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, img := range map[string]testimage.Image{"server.tar": server, "busybox.tar": busybox} {
		if err := testimage.WriteFile(filepath.Join(imgDir, name), func(w io.Writer) error { return testimage.WriteOCI(w, img) }); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(n.cleanup)
	n.start()
	return n
}

func (n *testNode) start() {
	t := n.t
	cfg := kubelet.Config{
		Client:       n.client,
		NodeName:     nodeName,
		NodeIP:       netip.MustParseAddr("127.0.0.1"),
		DataDir:      n.dataDir,
		PodCIDR:      n.cidr,
		Bridge:       n.bridge,
		LogDir:       n.logDir,
		ResyncPeriod: 2 * time.Second,
	}
	for _, o := range n.opts {
		o(&cfg)
	}
	n.stopContainerd = nil
	if cfg.ContainerRuntimeEndpoint == "" {
		sup, _, stop := nodetest.ContainerdAt(t, kubelet.ContainerdDir(n.dataDir))
		cfg.ContainerRuntimeEndpoint, n.stopContainerd = sup.Address(), stop
	}
	k, err := kubelet.New(cfg)
	if err != nil {
		n.stop()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done, n.kubelet = cancel, make(chan error, 1), k
	go func() { n.done <- k.Run(ctx) }()
	select {
	case <-k.Ready():
	case err := <-n.done:
		n.cancel()
		n.cancel = nil
		n.stop()
		t.Fatalf("kubelet ended before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("kubelet not ready after 60s")
	}
}

// stop ends the kubelet (and its containerd); containers keep running.
func (n *testNode) stop() {
	if n.cancel != nil {
		n.cancel()
		if err := <-n.done; err != nil {
			n.t.Errorf("kubelet Run: %v", err)
		}
		n.cancel = nil
	}
	if n.stopContainerd != nil {
		n.stopContainerd()
		n.stopContainerd = nil
	}
}

// cleanup deletes every pod and waits for the kubelet to clean up; what
// is left then (a failed test) is removed by force.
func (n *testNode) cleanup() {
	ctx := context.Background()
	if n.cancel != nil {
		pods, err := n.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, p := range pods.Items {
				n.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			}
		}
		_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			uids, _ := os.ReadDir(filepath.Join(n.dataDir, "agent", "cni", "netns"))
			return len(uids) == 0 && len(n.containers()) == 0, nil
		})
		n.stop()
	}
	n.forceClean()
}

// containers lists the containers in the node's containerd namespace
// through a containerd started for the purpose when the kubelet's is gone.
func (n *testNode) containers() []string {
	c, err := client.New(kubelet.ContainerdAddress(n.dataDir), client.WithTimeout(time.Second))
	if err != nil {
		return nil
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), images.Namespace), 5*time.Second)
	defer cancel()
	cs, err := c.Containers(ctx)
	if err != nil {
		return nil
	}
	var ids []string
	for _, x := range cs {
		ids = append(ids, x.ID())
	}
	return ids
}

// forceClean kills and removes every container and sandbox of the test.
func (n *testNode) forceClean() {
	t := n.t
	_, c, stop := nodetest.ContainerdAt(t, kubelet.ContainerdDir(n.dataDir))
	defer stop()
	ctx := namespaces.WithNamespace(context.Background(), images.Namespace)
	cs, _ := c.Containers(ctx)
	for _, x := range cs {
		if task, err := x.Task(ctx, nil); err == nil {
			task.Delete(ctx, client.WithProcessKill)
		}
		if err := x.Delete(ctx, client.WithSnapshotCleanup); err != nil {
			t.Errorf("force remove container %s: %v", x.ID(), err)
		}
	}
	m, err := sandbox.New(sandbox.Config{Dir: filepath.Join(n.dataDir, "agent", "cni"), Bridge: n.bridge, PodCIDR: n.cidr})
	if err != nil {
		t.Error(err)
		return
	}
	uids, _ := m.List()
	for _, u := range uids {
		if err := m.Teardown(ctx, u); err != nil {
			t.Errorf("force teardown %s: %v", u, err)
		}
	}
	if len(cs) > 0 || len(uids) > 0 {
		t.Errorf("the kubelet left %d containers and %d sandboxes behind", len(cs), len(uids))
	}
}

// pod is a small builder for test pods bound to the test node.
type pod struct{ p *corev1.Pod }

func newPod(name, image string) *pod {
	return &pod{&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: ptr(int64(5)),
			Containers:                    []corev1.Container{{Name: "main", Image: image, ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}}
}

func ptr[T any](v T) *T { return &v }

func (b *pod) command(cmd ...string) *pod { b.p.Spec.Containers[0].Command = cmd; return b }
func (b *pod) env(name, value string) *pod {
	b.p.Spec.Containers[0].Env = append(b.p.Spec.Containers[0].Env, corev1.EnvVar{Name: name, Value: value})
	return b
}
func (b *pod) envField(name, path string) *pod {
	b.p.Spec.Containers[0].Env = append(b.p.Spec.Containers[0].Env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}})
	return b
}
func (b *pod) restartPolicy(p corev1.RestartPolicy) *pod { b.p.Spec.RestartPolicy = p; return b }
func (b *pod) readiness(path string) *pod {
	b.p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
	}
	return b
}
func (b *pod) liveness(h corev1.ProbeHandler) *pod {
	// Two failures a second apart: a fresh container gets time to listen,
	// even on a loaded machine.
	b.p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: h, InitialDelaySeconds: 1, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 2}
	return b
}
func (b *pod) obj() *corev1.Pod { return b.p }

func (n *testNode) create(p *corev1.Pod) *corev1.Pod {
	n.t.Helper()
	got, err := n.client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		n.t.Fatal(err)
	}
	return got
}

// waitPod polls the pod until cond holds.
func (n *testNode) waitPod(name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	n.t.Helper()
	var last *corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := n.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		n.t.Fatalf("pod %s: not %s after %s; status: %s", name, what, timeout, describe(last))
	}
	return last
}

func describe(p *corev1.Pod) string {
	if p == nil {
		return "<none>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s ip=%s", p.Status.Phase, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, c := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, " [%s ready=%v restarts=%d state=%+v last=%+v]", c.Name, c.Ready, c.RestartCount, c.State, c.LastTerminationState)
	}
	return b.String()
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func (n *testNode) waitGone(name string) {
	n.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := n.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		n.t.Fatalf("pod %s still in the API 30s after delete", name)
	}
}
