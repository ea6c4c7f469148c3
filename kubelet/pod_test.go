package kubelet_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/kubelet/images"
	"github.com/tinykube/tinykube/kubelet/internal/nodetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
)

func TestNodeRegistersWithAddressesCapacityAndLease(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	node, err := n.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		t.Errorf("node not Ready: %+v", node.Status.Conditions)
	}
	if got := node.Status.Addresses; len(got) == 0 || got[0].Type != corev1.NodeInternalIP || got[0].Address != "127.0.0.1" {
		t.Errorf("addresses = %+v, want InternalIP 127.0.0.1 first", got)
	}
	if node.Status.Capacity.Cpu().IsZero() || node.Status.Allocatable.Memory().IsZero() || node.Status.Capacity.Pods().Value() != 110 {
		t.Errorf("capacity = %v, allocatable = %v", node.Status.Capacity, node.Status.Allocatable)
	}
	info := node.Status.NodeInfo
	if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://1.") || info.KubeletVersion != kubelet.Version || info.KernelVersion == "" {
		t.Errorf("nodeInfo = %+v", info)
	}
	lease, err := n.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != nodeName || lease.Spec.RenewTime == nil {
		t.Errorf("lease spec = %+v", lease.Spec)
	}
}

func TestPodRunsAnswersOnItsIPAndLeavesNothingWhenDeleted(t *testing.T) {
	n := startNode(t, nil)
	n.create(newPod("web", testimage.ServerRef).readiness("/healthz").obj())
	p := n.waitPod("web", 60*time.Second, "Running and Ready", podReady)

	ip, err := netip.ParseAddr(p.Status.PodIP)
	if err != nil || !n.cidr.Contains(ip) {
		t.Fatalf("podIP %q not in the node's pod CIDR %s", p.Status.PodIP, n.cidr)
	}
	if len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != p.Status.PodIP || p.Status.HostIP != "127.0.0.1" {
		t.Errorf("podIPs %v hostIP %q", p.Status.PodIPs, p.Status.HostIP)
	}
	cs := p.Status.ContainerStatuses
	if len(cs) != 1 || !cs[0].Ready || cs[0].State.Running == nil || cs[0].State.Waiting != nil || cs[0].State.Terminated != nil || cs[0].RestartCount != 0 ||
		!strings.HasPrefix(cs[0].ContainerID, "containerd://") || !strings.Contains(cs[0].ImageID, "@sha256:") ||
		cs[0].Image != testimage.ServerRef || cs[0].Started == nil || !*cs[0].Started {
		t.Errorf("container status = %+v", cs)
	}
	for _, want := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodReadyToStartContainers} {
		found := false
		for _, c := range p.Status.Conditions {
			if c.Type == want && c.Status == corev1.ConditionTrue {
				found = true
			}
		}
		if !found {
			t.Errorf("condition %s not True: %+v", want, p.Status.Conditions)
		}
	}
	if p.Status.StartTime == nil {
		t.Error("no startTime")
	}

	if got := httpGet(t, "http://"+p.Status.PodIP+":8080/"); got != "hello from web\n" {
		t.Errorf("pod answered %q, want its hostname (the pod name)", got)
	}

	logFile := filepath.Join(n.logDir, "default_web_"+string(p.UID), "main", "0.log")
	data, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(data), " stdout F listening on :8080") {
		t.Errorf("log %s = %q, %v; want CRI-format lines of the container's output", logFile, data, err)
	}

	if err := n.client.CoreV1().Pods("default").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitGone("web")
	if veths := nodetest.BridgePorts(t, n.bridge); len(veths) != 0 {
		t.Errorf("veths left on the bridge: %v", veths)
	}
	if nodetest.IPAllocated(t, filepath.Join(n.dataDir, "agent", "cni"), ip) {
		t.Errorf("pod IP %s still allocated", ip)
	}
	if m := nodetest.MountsUnder(t, n.dataDir); len(m) != 0 {
		t.Errorf("mounts left under the data dir: %v", m)
	}
	if ids := n.containers(); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
	n.assertNoSnapshots()
}

func (n *testNode) assertNoSnapshots() {
	n.t.Helper()
	c, err := client.New(kubelet.ContainerdAddress(n.dataDir))
	if err != nil {
		n.t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), images.Namespace)
	var active []string
	err = c.SnapshotService(images.Snapshotter).Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			active = append(active, info.Name)
		}
		return nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	if len(active) != 0 {
		n.t.Errorf("container snapshots left: %v", active)
	}
}

func TestContainerGetsCommandEnvAndDownwardAPI(t *testing.T) {
	n := startNode(t, nil, func(c *kubelet.Config) { c.ClusterDNS = []netip.Addr{netip.MustParseAddr("10.43.0.10")} })
	p := n.create(newPod("env", testimage.BusyboxRef).
		command("sh", "-c", "echo greeting=$GREETING pod=$POD_NAME ip=$POD_IP host=$(hostname) expanded=$(GREETING)-x api=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; cat /etc/resolv.conf").
		env("GREETING", "hi").envField("POD_NAME", "metadata.name").envField("POD_IP", "status.podIP").
		restartPolicy(corev1.RestartPolicyNever).obj())
	done := n.waitPod("env", 60*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	st := done.Status.ContainerStatuses[0].State.Terminated
	if st == nil || st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("terminated state = %+v, want exit 0 Completed", st)
	}
	data, err := os.ReadFile(filepath.Join(n.logDir, "default_env_"+string(p.UID), "main", "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	api, err := n.client.CoreV1().Services("default").Get(context.Background(), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"greeting=hi pod=env ip=" + done.Status.PodIP + " host=env expanded=hi-x api=" + api.Spec.ClusterIP + ":443\n",
		// ClusterFirst: the cluster DNS and the namespace's search list.
		"search default.svc.cluster.local svc.cluster.local cluster.local",
		"nameserver 10.43.0.10\n",
		"options ndots:5\n",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("output %q does not contain %q", data, want)
		}
	}
}

func TestCrashingContainerShowsCrashLoopBackOff(t *testing.T) {
	n := startNode(t, nil)
	n.create(newPod("crash", testimage.BusyboxRef).command("sh", "-c", "echo boom; exit 3").obj())
	p := n.waitPod("crash", 60*time.Second, "in CrashLoopBackOff", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		c := p.Status.ContainerStatuses[0]
		return c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff" && c.RestartCount >= 1
	})
	c := p.Status.ContainerStatuses[0]
	last := c.LastTerminationState.Terminated
	if last == nil || last.ExitCode != 3 || last.Reason != "Error" {
		t.Errorf("lastState = %+v, want terminated with exit 3, reason Error", c.LastTerminationState)
	}
	if c.Ready || p.Status.Phase != corev1.PodRunning {
		t.Errorf("crash-looping pod: phase %s ready %v; want Running and not ready", p.Status.Phase, c.Ready)
	}
	if !strings.Contains(c.State.Waiting.Message, "back-off 10s restarting failed container=main pod=crash_default") {
		t.Errorf("waiting message = %q", c.State.Waiting.Message)
	}
	n.waitEvents(p, "Warning BackOff spec.containers{main}: Back-off restarting failed container main in pod crash_default("+string(p.UID)+")")
}

func TestLivenessFailureRestartsTheContainer(t *testing.T) {
	n := startNode(t, nil)
	n.create(newPod("live", testimage.ServerRef).readiness("/healthz").liveness(corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)},
	}).obj())
	p := n.waitPod("live", 60*time.Second, "Ready", podReady)
	first := p.Status.ContainerStatuses[0].ContainerID
	httpGet(t, "http://"+p.Status.PodIP+":8080/sick")
	p = n.waitPod("live", 60*time.Second, "restarted and Ready again", func(p *corev1.Pod) bool {
		c := p.Status.ContainerStatuses
		return podReady(p) && len(c) == 1 && c[0].RestartCount >= 1 && c[0].ContainerID != first
	})
	if got := httpGet(t, "http://"+p.Status.PodIP+":8080/healthz"); got != "ok\n" {
		t.Errorf("restarted container's /healthz = %q, want a fresh healthy process", got)
	}
	n.waitEvents(p,
		"Warning Unhealthy spec.containers{main}: Liveness probe failed: HTTP probe failed with statuscode: 500",
		"Normal Killing spec.containers{main}: Container main failed liveness probe, will be restarted",
	)
}

func TestExecProbeGatesReadiness(t *testing.T) {
	n := startNode(t, nil)
	b := newPod("gate", testimage.BusyboxRef).command("sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 3600")
	b.p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", "/tmp/ready"}}},
		PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1,
	}
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(1)) // sleep ignores SIGTERM
	n.create(b.obj())
	p := n.waitPod("gate", 60*time.Second, "Ready", podReady)
	if p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("restarts = %d", p.Status.ContainerStatuses[0].RestartCount)
	}
}

func TestKubeletRestartReadoptsRunningContainers(t *testing.T) {
	n := startNode(t, nil)
	n.create(newPod("stay", testimage.ServerRef).readiness("/healthz").obj())
	n.create(newPod("leave", testimage.ServerRef).obj())
	before := n.waitPod("stay", 60*time.Second, "Ready", podReady)
	n.waitPod("leave", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	n.stop()
	// While the kubelet is down, a pod is force-deleted from the API.
	if err := n.client.CoreV1().Pods("default").Delete(context.Background(), "leave", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if got := httpGet(t, "http://"+before.Status.PodIP+":8080/"); got != "hello from stay\n" {
		t.Fatalf("pod stopped answering while the kubelet was down: %q", got)
	}
	n.start()

	n.waitPod("stay", 30*time.Second, "Ready after the restart", podReady)
	after, _ := n.client.CoreV1().Pods("default").Get(context.Background(), "stay", metav1.GetOptions{})
	bc, ac := before.Status.ContainerStatuses[0], after.Status.ContainerStatuses[0]
	if ac.ContainerID != bc.ContainerID || ac.RestartCount != 0 || after.Status.PodIP != before.Status.PodIP {
		t.Errorf("after restart: container %s restarts %d ip %s; want %s, 0, %s", ac.ContainerID, ac.RestartCount, after.Status.PodIP, bc.ContainerID, before.Status.PodIP)
	}
	if got := httpGet(t, "http://"+after.Status.PodIP+":8080/"); got != "hello from stay\n" {
		t.Errorf("re-adopted pod answered %q", got)
	}
	// The pod deleted while the kubelet was down is cleaned up.
	err := waitFor(30*time.Second, func() bool { return len(n.containers()) == 1 && len(nodetest.BridgePorts(t, n.bridge)) == 1 })
	if err != nil {
		t.Errorf("orphaned pod not cleaned up: containers %v, veths %v", n.containers(), nodetest.BridgePorts(t, n.bridge))
	}
}

func waitFor(timeout time.Duration, cond func() bool) error {
	return wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
}

func metav1GetOptions() metav1.GetOptions { return metav1.GetOptions{} }

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func nodetestRequire(t *testing.T) { nodetest.RequireRoot(t, "ip") }
