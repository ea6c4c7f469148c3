package kubelet

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/tinykube/tinykube/kubelet/images"
	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// KubeletPort is where the kubelet's HTTPS API listens.
const KubeletPort = 10250

// leaseDuration is the node Lease's duration, upstream's default.
const leaseDuration = 40 * time.Second

// maxPods is the node's pod capacity, upstream's default.
const maxPods = 110

func namespacedContext(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, images.Namespace)
}

// registerNode creates or updates the Node, posts its status and returns
// the pod CIDR: Config.PodCIDR, or the Node's spec.podCIDR once set.
func (k *Kubelet) registerNode(ctx context.Context) (netip.Prefix, error) {
	nodes := k.client.CoreV1().Nodes()
	var node *corev1.Node
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := nodes.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			n, err = nodes.Create(ctx, k.initialNode(), metav1.CreateOptions{})
		}
		if err != nil {
			k.log.Warn("registering the node", "node", k.cfg.NodeName, "err", err)
			return false, nil
		}
		node = n
		return true, nil
	})
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("kubelet: register node: %w", err)
	}
	// The heartbeat posts status again; one failed post must not stop the
	// node.
	if err := k.postNodeStatus(ctx); err != nil && ctx.Err() == nil {
		k.log.Warn("posting node status", "err", err)
	}
	if k.cfg.PodCIDR.IsValid() {
		return k.cfg.PodCIDR, nil
	}
	var cidr netip.Prefix
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		if node.Spec.PodCIDR == "" {
			n, err := nodes.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			node = n
		}
		if node.Spec.PodCIDR == "" {
			k.log.Info("waiting for the node's pod CIDR", "node", k.cfg.NodeName)
			return false, nil
		}
		p, err := netip.ParsePrefix(node.Spec.PodCIDR)
		if err != nil {
			return false, fmt.Errorf("kubelet: node %s podCIDR %q: %w", k.cfg.NodeName, node.Spec.PodCIDR, err)
		}
		cidr = p
		return true, nil
	})
	return cidr, err
}

func (k *Kubelet) initialNode() *corev1.Node {
	hostname, _ := os.Hostname()
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: k.cfg.NodeName,
			Labels: map[string]string{
				corev1.LabelHostname:               k.cfg.NodeName,
				corev1.LabelOSStable:               runtime.GOOS,
				corev1.LabelArchStable:             runtime.GOARCH,
				"beta.kubernetes.io/os":            runtime.GOOS,
				"beta.kubernetes.io/arch":          runtime.GOARCH,
				"node.kubernetes.io/instance-type": "tinykube",
			},
			Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0", "tinykube.io/hostname": hostname},
		},
		Spec: corev1.NodeSpec{PodCIDR: prefixString(k.cfg.PodCIDR), PodCIDRs: prefixStrings(k.cfg.PodCIDR)},
	}
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func prefixStrings(p netip.Prefix) []string {
	if !p.IsValid() {
		return nil
	}
	return []string{p.String()}
}

// nodeStatus is the node's status as of now.
func (k *Kubelet) nodeStatus(ctx context.Context, prev corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.NewTime(k.clock.Now())
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods:   *resource.NewQuantity(maxPods, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memoryBytes(), resource.BinarySI),
	}
	var fs unix.Statfs_t
	if unix.Statfs(k.cfg.DataDir, &fs) == nil {
		capacity[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(fs.Blocks)*fs.Bsize, resource.BinarySI)
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	runtimeVersion := "containerd://unknown"
	if k.images != nil {
		if v, err := k.images.RuntimeVersion(ctx); err == nil {
			runtimeVersion = v
		}
	}
	ready := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
	}
	conds := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		ready,
	}
	for i := range conds {
		conds[i].LastHeartbeatTime = now
		conds[i].LastTransitionTime = now
		for _, p := range prev.Conditions {
			if p.Type == conds[i].Type && p.Status == conds[i].Status {
				conds[i].LastTransitionTime = p.LastTransitionTime
			}
		}
	}
	hostname, _ := os.Hostname()
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Conditions:  conds,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: k.cfg.NodeIP.String()},
			{Type: corev1.NodeHostName, Address: hostname},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: k.kubeletPort()}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               readTrim("/etc/machine-id"),
			SystemUUID:              readTrim("/sys/class/dmi/id/product_uuid"),
			BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
			KernelVersion:           unix.ByteSliceToString(uts.Release[:]),
			OSImage:                 osImage(),
			ContainerRuntimeVersion: runtimeVersion,
			KubeletVersion:          Version,
			OperatingSystem:         runtime.GOOS,
			Architecture:            runtime.GOARCH,
		},
		Images: prev.Images,
	}
}

func (k *Kubelet) postNodeStatus(ctx context.Context) error {
	nodes := k.client.CoreV1().Nodes()
	// Node IPAM writes the pod CIDR and the node lifecycle controller its
	// taints while the kubelet posts status: a conflict only means to read
	// again.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := nodes.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status = k.nodeStatus(ctx, n.Status)
		_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("kubelet: node status: %w", err)
	}
	return nil
}

// heartbeat renews the node Lease and posts node status every
// NodeStatusUpdateFrequency.
func (k *Kubelet) heartbeat(ctx context.Context) {
	t := k.clock.NewTicker(k.cfg.NodeStatusUpdateFrequency)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if err := k.renewLease(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("renewing the node lease", "err", err)
		}
		if err := k.postNodeStatus(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("posting node status", "err", err)
		}
	}
}

func (k *Kubelet) renewLease(ctx context.Context) error {
	leases := k.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(k.clock.Now())
	l, err := leases.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(k.cfg.NodeName),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}
		if node, err := k.client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{}); err == nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity = ptr.To(k.cfg.NodeName)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDuration / time.Second))
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

func memoryBytes() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func osImage() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

// kubeletPort is the port the kubelet API listens on, advertised to the API
// server.
func (k *Kubelet) kubeletPort() int32 {
	if k.port != 0 {
		return k.port
	}
	return KubeletPort
}
