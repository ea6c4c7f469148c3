package kubelet_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/kubelet/internal/nodetest"
)

// TestExistingContainerdThroughRuntimeEndpoint: with
// --container-runtime-endpoint the kubelet runs pods through that
// containerd and starts none of its own.
func TestExistingContainerdThroughRuntimeEndpoint(t *testing.T) {
	nodetest.RequireRoot(t, "ip")
	existing, ctr := nodetest.Containerd(t)
	n := startNode(t, nil, func(c *kubelet.Config) { c.ContainerRuntimeEndpoint = existing.Address() })
	n.create(newPod("via-endpoint", testimage.BusyboxRef).command("sleep", "3600").obj())
	p := n.waitPod("via-endpoint", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if id := p.Status.ContainerStatuses[0].ContainerID; id == "" {
		t.Fatalf("no container ID: %s", describe(p))
	}
	containers, err := ctr.Containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(containers) != 1 || "containerd://"+containers[0].ID() != p.Status.ContainerStatuses[0].ContainerID {
		t.Fatalf("the existing containerd holds %d containers, want the pod's %s", len(containers), p.Status.ContainerStatuses[0].ContainerID)
	}
	if _, err := os.Stat(kubelet.ContainerdAddress(n.dataDir)); !os.IsNotExist(err) {
		t.Fatalf("the kubelet started a containerd of its own at %s (stat: %v)", kubelet.ContainerdAddress(n.dataDir), err)
	}
}
