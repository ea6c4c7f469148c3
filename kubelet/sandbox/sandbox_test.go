package sandbox_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tinykube/tinykube/kubelet/internal/nodetest"
	"github.com/tinykube/tinykube/kubelet/sandbox"
	"golang.org/x/sys/unix"
)

func newManager(t *testing.T) *sandbox.Manager {
	t.Helper()
	nodetest.RequireRoot(t, "ip")
	bridge, cidr := nodetest.PodNetwork(t)
	m, err := sandbox.New(sandbox.Config{Dir: filepath.Join(t.TempDir(), "cni"), Bridge: bridge, PodCIDR: cidr})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// listenIn opens a TCP listener inside the network namespace at path.
func listenIn(t *testing.T, netns string) net.Listener {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		f, err := os.Open(netns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		l, err := net.Listen("tcp4", ":8080")
		ch <- result{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.l.Close() })
	return r.l
}

func TestSandboxGivesEachPodAnAddressReachableFromTheNode(t *testing.T) {
	m := newManager(t)
	ctx := context.Background()
	pods := []sandbox.Pod{{UID: "uid-a", Namespace: "default", Name: "a"}, {UID: "uid-b", Namespace: "default", Name: "b"}}
	ips := map[netip.Addr]bool{}
	for _, p := range pods {
		sb, err := m.Setup(ctx, p, p.Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Teardown(context.Background(), p.UID) })
		if ips[sb.IP] {
			t.Fatalf("pod %s got %s, already given to another pod", p.Name, sb.IP)
		}
		ips[sb.IP] = true

		again, err := m.Setup(ctx, p, p.Name, nil)
		if err != nil || again != sb {
			t.Fatalf("second Setup of %s = %+v, %v; want the same sandbox %+v", p.Name, again, err, sb)
		}

		out, err := exec.Command("nsenter", "--uts="+sb.UTSNS, "hostname").Output()
		if err != nil || strings.TrimSpace(string(out)) != p.Name {
			t.Errorf("hostname in the pod = %q, %v; want %q", out, err, p.Name)
		}

		l := listenIn(t, sb.NetNS)
		go func() {
			c, err := l.Accept()
			if err == nil {
				io.WriteString(c, "hi "+p.Name)
				c.Close()
			}
		}()
		conn, err := net.DialTimeout("tcp4", netip.AddrPortFrom(sb.IP, 8080).String(), 5*time.Second)
		if err != nil {
			t.Fatalf("node cannot reach pod %s at %s: %v", p.Name, sb.IP, err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(conn)
		conn.Close()
		if string(got) != "hi "+p.Name {
			t.Errorf("pod %s answered %q", p.Name, got)
		}
	}
	if uids, _ := m.List(); len(uids) != 2 {
		t.Errorf("List = %v, want both pods", uids)
	}
}

func TestTeardownLeavesNothingBehind(t *testing.T) {
	m := newManager(t)
	ctx := context.Background()
	pod := sandbox.Pod{UID: "uid-gone", Namespace: "default", Name: "gone"}
	sb, err := m.Setup(ctx, pod, pod.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if veths := nodetest.BridgePorts(t, m.Bridge()); len(veths) != 1 {
		t.Fatalf("bridge ports after setup = %v, want one veth", veths)
	}
	for i := 0; i < 2; i++ { // the second teardown finds nothing and is fine
		if err := m.Teardown(ctx, pod.UID); err != nil {
			t.Fatalf("teardown %d: %v", i, err)
		}
	}
	if veths := nodetest.BridgePorts(t, m.Bridge()); len(veths) != 0 {
		t.Errorf("veths left on the bridge: %v", veths)
	}
	if nodetest.IPAllocated(t, filepath.Dir(filepath.Dir(sb.NetNS)), sb.IP) {
		t.Errorf("IP %s still allocated", sb.IP)
	}
	if mounts := nodetest.MountsUnder(t, filepath.Dir(sb.NetNS)); len(mounts) != 0 {
		t.Errorf("namespace mounts left: %v", mounts)
	}
	if uids, _ := m.List(); len(uids) != 0 {
		t.Errorf("List after teardown = %v", uids)
	}
}

func TestNewNamesTheMissingCNIPackage(t *testing.T) {
	_, err := sandbox.New(sandbox.Config{Dir: t.TempDir(), PodCIDR: netip.MustParsePrefix("10.42.0.0/24"), PluginDirs: []string{t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "containernetworking-plugins") {
		t.Fatalf("got %v, want an error naming containernetworking-plugins", err)
	}
	_ = fmt.Sprint()
}
