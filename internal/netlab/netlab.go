// Package netlab builds the small networks that tinykube's network tests run
// in: network namespaces, veth pairs and bridges, created by the test and
// removed when it ends (also when it fails). Nothing is ever configured in
// the host's own network namespace: links are created directly inside the
// test's namespaces. It needs root; Require skips without it, except under
// CI=true where it fails.
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require skips t unless it runs as root with the ip and nft tools; under
// CI=true it fails instead, so that CI never silently skips the lab.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, "the "+tool+" tool")
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "network lab test needs " + strings.Join(missing, " and ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: not skipping)")
	}
	t.Skip(msg)
}

// Lab is a set of network namespaces owned by one test.
type Lab struct {
	t      testing.TB
	prefix string
}

// New returns an empty lab whose namespaces are removed when t ends.
func New(t testing.TB) *Lab {
	t.Helper()
	Require(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return &Lab{t: t, prefix: "tk" + hex.EncodeToString(b) + "-"}
}

// NS is a network namespace of a lab.
type NS struct {
	lab  *Lab
	Name string // the name `ip netns` knows it by
}

// AddNS creates a namespace with lo up.
func (l *Lab) AddNS(short string) *NS {
	l.t.Helper()
	ns := &NS{lab: l, Name: l.prefix + short}
	l.must("ip", "netns", "add", ns.Name)
	l.t.Cleanup(func() {
		// Deleting the namespace removes its links and nftables tables.
		_ = exec.Command("ip", "netns", "del", ns.Name).Run()
	})
	ns.IP("link", "set", "lo", "up")
	return ns
}

// Veth connects a and b with a veth pair named aName in a and bName in b.
func (l *Lab) Veth(a *NS, aName string, b *NS, bName string) {
	l.t.Helper()
	a.IP("link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name)
	a.IP("link", "set", aName, "up")
	b.IP("link", "set", bName, "up")
}

func (l *Lab) must(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// IP runs `ip -n NS args...`.
func (ns *NS) IP(args ...string) string {
	ns.lab.t.Helper()
	return ns.lab.must(append([]string{"ip", "-n", ns.Name}, args...)...)
}

// Exec runs a command inside the namespace.
func (ns *NS) Exec(args ...string) string {
	ns.lab.t.Helper()
	return ns.lab.must(append([]string{"ip", "netns", "exec", ns.Name}, args...)...)
}

// Set sets a kernel parameter of the namespace, named as under /proc/sys
// ("net/ipv4/ip_forward"); it implements proxy.Sysctl. It writes /proc/sys
// from inside the namespace (no dependence on procps' sysctl).
func (ns *NS) Set(name, value string) error {
	path := filepath.Join("/proc/sys", filepath.Clean("/"+name))
	out, err := exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c", `printf '%s' "$1" > "$2"`, "sh", value, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("setting %s: %v: %s", name, err, out)
	}
	return nil
}

// NFTWrapper returns a directory holding an `nft` that runs the real nft
// inside the namespace; put it first in PATH before knftables.New so that
// the proxy's rules land in the namespace.
func (ns *NS) NFTWrapper() string {
	ns.lab.t.Helper()
	real, err := exec.LookPath("nft")
	if err != nil {
		ns.lab.t.Fatal(err)
	}
	dir := ns.lab.t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns.Name, real)
	if err := os.WriteFile(filepath.Join(dir, "nft"), []byte(script), 0o755); err != nil {
		ns.lab.t.Fatal(err)
	}
	return dir
}

// Do runs f on an OS thread that is inside the namespace. Sockets f creates
// belong to the namespace and may be used from any goroutine afterwards.
func (ns *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it dies with this goroutine, so a
		// failure to switch back cannot leak a thread in the namespace.
		fd, err := unix.Open(filepath.Join("/var/run/netns", ns.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.Name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Listen opens a listener inside the namespace.
func (ns *NS) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := ns.Do(func() (err error) {
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// ListenPacket opens a packet listener inside the namespace.
func (ns *NS) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := ns.Do(func() (err error) {
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// DialContext dials from inside the namespace.
func (ns *NS) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}
