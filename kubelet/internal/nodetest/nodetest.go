// Package nodetest holds helpers for the kubelet's tests that need a real
// node: root, containerd, runc and the CNI plugins.
package nodetest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/tinykube/tinykube/kubelet/images"
	"github.com/tinykube/tinykube/kubelet/supervisor"
)

// RequireRoot skips t when the prerequisites of a real node are missing, or
// fails it under CI=true, where a missing prerequisite is a broken setup.
func RequireRoot(t testing.TB, binaries ...string) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	}
	for _, b := range append([]string{"containerd", "runc", "containerd-shim-runc-v2"}, binaries...) {
		if missing != "" {
			break
		}
		if _, err := exec.LookPath(b); err != nil {
			missing = b
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("this test needs %s (run as root with containerd, runc and containernetworking-plugins installed: scripts/install-deps.sh)", missing)
	}
	t.Skipf("skipping: needs %s (run as root with containerd, runc and containernetworking-plugins installed)", missing)
}

// Containerd starts tinykube's supervised containerd in a temp dir for the
// test and stops it at cleanup. It returns the supervisor and a client in the
// node's namespace.
func Containerd(t testing.TB) (*supervisor.Supervisor, *client.Client) {
	t.Helper()
	RequireRoot(t)
	s, c, stop := ContainerdAt(t, filepath.Join(ShortTempDir(t), "containerd"))
	t.Cleanup(stop)
	return s, c
}

// PodNetwork returns a bridge name and a pod CIDR for one test, both unique
// on this host, and deletes the bridge at cleanup. The CIDR lies in
// 10.200.0.0/13, a range the test owns on the bridge it creates.
func PodNetwork(t testing.TB) (bridge string, cidr netip.Prefix) {
	t.Helper()
	n := (os.Getpid()*131 + int(time.Now().UnixNano()/1000)) % 2048
	bridge = fmt.Sprintf("tkt%d", n)
	cidr = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + n/256), byte(n % 256), 0}), 24)
	t.Cleanup(func() {
		if _, err := net.InterfaceByName(bridge); err == nil {
			if out, err := exec.Command("ip", "link", "delete", bridge).CombinedOutput(); err != nil {
				t.Errorf("delete bridge %s: %v: %s", bridge, err, out)
			}
		}
	})
	return bridge, cidr
}

// BridgePorts lists the interfaces attached to bridge.
func BridgePorts(t testing.TB, bridge string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	if err != nil {
		t.Fatalf("bridge %s: %v", bridge, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// IPAllocated reports whether host-local under cniDir holds ip.
func IPAllocated(t testing.TB, cniDir string, ip netip.Addr) bool {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(cniDir, "ipam", "*", ip.String()))
	if err != nil {
		t.Fatal(err)
	}
	return len(matches) > 0
}

// MountsUnder lists the mount points at or below dir.
func MountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			found = append(found, fields[4])
		}
	}
	return found
}

// ContainerdAt starts a supervised containerd on an existing containerd dir
// (a node's, after its kubelet stopped); stop ends it.
func ContainerdAt(t testing.TB, dir string) (*supervisor.Supervisor, *client.Client, func()) {
	t.Helper()
	s, err := supervisor.New(supervisor.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("containerd: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		<-done
		t.Fatal("containerd not ready after 30s")
	}
	c, err := client.New(s.Address(), client.WithDefaultNamespace(images.Namespace))
	if err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	return s, c, func() {
		c.Close()
		cancel()
		<-done
	}
}

// ShortTempDir is a temp dir with a short path, removed at cleanup:
// containerd's sockets live under a node's data dir and unix socket paths
// are limited to 104 bytes, which t.TempDir's long names exceed.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// BridgePortsIfAny is BridgePorts for a bridge that may not exist yet.
func BridgePortsIfAny(bridge string) []string {
	entries, _ := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
