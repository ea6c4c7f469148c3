//go:build !nokubectl

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tinykube/tinykube/internal/netlab"
	"github.com/tinykube/tinykube/internal/testimage"
)

// The lab's LAN: every node and the external client hang off one bridge in
// a namespace of their own. Nothing here is routed anywhere else.
const (
	labPrefixLen = 24
	labGateway   = "192.168.77.1" // the bridge's address; goes nowhere
	labClientIP  = "192.168.77.100"
)

// labNet is the lab's switch and its external client.
type labNet struct {
	lab    *netlab.Lab
	sw     *netlab.NS
	client *netlab.NS
	ports  int
}

// newLabNet builds the switch namespace with its bridge, and the client.
func newLabNet(t *testing.T) *labNet {
	t.Helper()
	lab := netlab.New(t)
	n := &labNet{lab: lab, sw: lab.AddNS("sw")}
	n.sw.IP("link", "add", "br0", "type", "bridge")
	n.sw.IP("addr", "add", labGateway+"/"+strconv.Itoa(labPrefixLen), "dev", "br0")
	n.sw.IP("link", "set", "br0", "up")
	n.client = n.attach("client", labClientIP)
	return n
}

// attach makes a namespace with eth0 on the bridge at ip, its default
// route via the bridge's address.
func (n *labNet) attach(short, ip string) *netlab.NS {
	ns := n.lab.AddNS(short)
	n.ports++
	port := fmt.Sprintf("p%d", n.ports)
	n.lab.Veth(ns, "eth0", n.sw, port)
	n.sw.IP("link", "set", port, "master", "br0")
	ns.IP("addr", "add", ip+"/"+strconv.Itoa(labPrefixLen), "dev", "eth0")
	ns.IP("route", "add", "default", "via", labGateway)
	return ns
}

// requireTools skips t when a program a node runs is missing, or fails it
// under CI=true, where a missing prerequisite is a broken setup.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := "lab test needs " + tool + " (scripts/install-deps.sh installs it)"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg + " (CI=true: not skipping)")
			}
			t.Skip(msg)
		}
	}
}

// labServer is `tinykube server` running in a node namespace of the lab.
type labServer struct {
	t          *testing.T
	ns         *netlab.NS
	ip         string
	name       string
	dataDir    string
	kubeconfig string
	args       []string
	// joins is the server an agent joins; nil for a server.
	joins *labServer
	// apiNS is where the API server's loopback address is: the node's
	// own namespace, or an agent's server's.
	apiNS *netlab.NS
	// p is the running process, shared by the copies subtests use.
	p *labProc
	// mountNS pins the node's mount namespace, which every start of the
	// server enters, as a host's restarted server finds the mounts its
	// last run left (the pods' pinned network namespaces among them).
	mountNS string
}

// labProc is one run of the server.
type labProc struct {
	cmd    *exec.Cmd
	exited chan error
	stderr *lockedBuffer
	// ready gets the first line of stdout.
	ready chan string
}

// lockedBuffer collects a child's stderr for failure messages.
type lockedBuffer struct {
	mu  chan struct{}
	buf strings.Builder
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{mu: make(chan struct{}, 1)} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

// All is everything written so far.
func (b *lockedBuffer) All() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func (b *lockedBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	s := b.buf.String()
	if len(s) > 20000 {
		s = "...\n" + s[len(s)-20000:]
	}
	return s
}

// newLabServer prepares a node namespace at ip and a data dir holding the
// test images (imported at start, as air-gapped installs do); start runs
// the server.
func newLabServer(t *testing.T, n *labNet, name, ip string, args ...string) *labServer {
	t.Helper()
	requireTools(t, "containerd", "runc", "containerd-shim-runc-v2", "nsenter", "unshare")
	s := &labServer{t: t, ns: n.attach(name, ip), ip: ip, name: name, dataDir: t.TempDir(), args: args, p: &labProc{stderr: newLockedBuffer()}}
	s.apiNS = s.ns
	s.kubeconfig = filepath.Join(s.dataDir, "kubeconfig.yaml")
	images := filepath.Join(s.dataDir, "agent", "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	for file, build := range map[string]func() (testimage.Image, error){"testserver.tar": testimage.Server, "busybox.tar": testimage.Busybox} {
		img, err := build()
		if err != nil {
			t.Fatal(err)
		}
		if err := testimage.WriteFile(filepath.Join(images, file), func(w io.Writer) error { return testimage.WriteOCI(w, img) }); err != nil {
			t.Fatal(err)
		}
	}
	s.mountNS = newMountNS(t)
	// Runs after the namespace's own cleanup was registered, so before it:
	// pods are stopped while the node can still do it.
	t.Cleanup(s.cleanUp)
	return s
}

// newMountNS makes a mount namespace that outlives its processes, pinned
// on a file (on a private mount of its own, as the kernel requires), and
// whose mounts stay out of the host's view; it is removed at cleanup.
func newMountNS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, args := range [][]string{{"--bind", dir, dir}, {"--make-private", dir}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v: %v: %s", args, err, out)
		}
	}
	file := filepath.Join(dir, "mnt")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Runs after the server's cleanup, which ends the processes inside.
	t.Cleanup(func() {
		for _, path := range []string{file, dir} {
			if out, err := exec.Command("umount", "--lazy", path).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", path, err, out)
			}
		}
	})
	if out, err := exec.Command("unshare", "--mount="+file, "--propagation", "slave", "true").CombinedOutput(); err != nil {
		t.Fatalf("unshare --mount=%s: %v: %s", file, err, out)
	}
	return file
}

// in is s for use in subtest t: failures end t, not the parent test.
func (s *labServer) in(t *testing.T) *labServer {
	c := *s
	c.t = t
	return &c
}

// newLabAgent prepares an agent node that joins server.
func newLabAgent(t *testing.T, n *labNet, server *labServer, name, ip string, args ...string) *labServer {
	t.Helper()
	a := newLabServer(t, n, name, ip, args...)
	a.joins = server
	// Its pods are deleted through the server, whose client it borrows.
	a.kubeconfig = server.kubeconfig
	a.apiNS = server.ns
	return a
}

// startNoWait runs the server and returns at once.
func (s *labServer) startNoWait() *labProc {
	t := s.t
	t.Helper()
	// The server enters the node's network namespace and the node's mount
	// namespace, so the mounts of its pods stay out of the host's view.
	// (Not `ip netns exec`: it mounts a fresh /sys without the cgroup
	// file systems runc needs.)
	argv := []string{"--net=/var/run/netns/" + s.ns.Name, "--mount=" + s.mountNS, "--", os.Args[0]}
	if s.joins == nil {
		argv = append(argv, "server", "--write-kubeconfig", s.kubeconfig, "--advertise-address", s.ip)
	} else {
		argv = append(argv, "agent", "--server", "https://"+net.JoinHostPort(s.joins.ip, "6443"),
			"--token-file", filepath.Join(s.joins.dataDir, "server", "token"))
	}
	argv = append(argv, "--data-dir", s.dataDir, "--node-name", s.name, "--node-ip", s.ip)
	argv = append(argv, s.args...)
	s.p.cmd = exec.Command("nsenter", argv...)
	s.p.cmd.Env = append(os.Environ(), execMainEnv+"=1")
	stdout, err := s.p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.p.stderr = newLockedBuffer()
	s.p.cmd.Stderr = s.p.stderr
	s.p.exited = make(chan error, 1)
	if err := s.p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.p.ready = make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case s.p.ready <- sc.Text():
			default:
			}
		}
		s.p.exited <- s.p.cmd.Wait()
		close(s.p.exited)
	}()
	return s.p
}

// start runs the server and waits for its ready line.
func (s *labServer) start() {
	t := s.t
	t.Helper()
	s.startNoWait()
	select {
	case line := <-s.p.ready:
		if !strings.HasPrefix(line, "tinykube: API server ready at ") && !strings.HasPrefix(line, "tinykube: node "+s.name+" joined ") {
			t.Fatalf("unexpected first line %q", line)
		}
	case err := <-s.p.exited:
		t.Fatalf("server exited before it was ready: %v; stderr:\n%s", err, s.p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60s; stderr:\n%s", s.name, s.p.stderr)
	}
}

// stop ends the server with sig and waits for it.
func (s *labServer) stop(sig syscall.Signal) {
	s.t.Helper()
	if s.p.cmd == nil {
		return
	}
	_ = s.p.cmd.Process.Signal(sig)
	select {
	case <-s.p.exited:
	case <-time.After(30 * time.Second):
		_ = s.p.cmd.Process.Kill()
		<-s.p.exited
		s.t.Errorf("server did not exit within 30s of %v; stderr:\n%s", sig, s.p.stderr)
	}
	s.p.cmd = nil
}

// cleanUp deletes every pod through the API so the kubelet stops their
// containers, stops the server, and ends whatever it started that is
// still running in the node's namespace (containerd and its shims, if
// the server could not stop them).
func (s *labServer) cleanUp() {
	t := s.t
	if s.p.cmd != nil {
		if cs, err := s.clientsetOrErr(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			nss, _ := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			if nss != nil {
				for _, ns := range nss.Items {
					_ = cs.AppsV1().Deployments(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
					_ = cs.AppsV1().ReplicaSets(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
					_ = cs.CoreV1().Pods(ns.Name).DeleteCollection(ctx, *metav1.NewDeleteOptions(0), metav1.ListOptions{})
				}
			}
			err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
				pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
				return err == nil && len(pods.Items) == 0, nil
			})
			cancel()
			if err != nil {
				t.Errorf("pods still there at cleanup: %v", err)
			}
		}
		s.stop(syscall.SIGTERM)
	}
	out, _ := exec.Command("ip", "netns", "pids", s.ns.Name).Output()
	for _, f := range strings.Fields(string(out)) {
		// This test process may be listed: netlab's dialling threads enter
		// the namespace, and Go may keep the main thread there.
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// Pods outlive their server by design, each in a network namespace of
	// its own: a test that ends with the server stopped leaves them
	// running. Their root file systems are under the node's data dir.
	killProcessesUsing(s.dataDir)
}

// killProcessesUsing SIGKILLs every process with a mount under dir (a
// node's containers and their shims) and waits, for a few seconds, until
// they are gone.
func killProcessesUsing(dir string) {
	needle := []byte(" " + dir + "/")
	find := func() []int {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			mounts, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
			if err == nil && bytes.Contains(mounts, needle) || bytes.Contains(mounts, []byte("upperdir="+dir+"/")) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	_ = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		pids := find()
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		return len(pids) == 0, nil
	})
}

func (s *labServer) clientsetOrErr() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		return nil, err
	}
	// The kubeconfig names 127.0.0.1: the node's own loopback.
	cfg.Dial = s.apiNS.DialContext
	cfg.QPS, cfg.Burst = -1, 0
	return kubernetes.NewForConfig(cfg)
}

// clientset is a client of the server's admin kubeconfig, dialling from
// inside the node namespace.
func (s *labServer) clientset() kubernetes.Interface {
	s.t.Helper()
	cs, err := s.clientsetOrErr()
	if err != nil {
		s.t.Fatal(err)
	}
	return cs
}

// kubectl runs the built-in kubectl on the node, as a user logged in there
// would, and returns its stdout, stderr and exit code.
func (s *labServer) kubectl(stdin string, args ...string) (string, string, int) {
	s.t.Helper()
	return s.run(stdin, append([]string{"kubectl", "--kubeconfig", s.kubeconfig}, args...)...)
}

// tinykube runs a tinykube command on the node.
func (s *labServer) tinykube(args ...string) (string, string, int) {
	s.t.Helper()
	return s.run("", args...)
}

func (s *labServer) run(stdin string, args ...string) (string, string, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append([]string{"netns", "exec", s.ns.Name, os.Args[0]}, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Env = append(os.Environ(), execMainEnv+"=1", "HOME="+filepath.Join(s.dataDir, "home"))
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			s.t.Fatalf("kubectl %v: %v", args, err)
		}
		code = exit.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// kubectlOK runs kubectl and fails the test unless it exits 0.
func (s *labServer) kubectlOK(stdin string, args ...string) string {
	s.t.Helper()
	out, errOut, code := s.kubectl(stdin, args...)
	if code != 0 {
		s.t.Fatalf("kubectl %s: exit %d\nstdout:\n%s\nstderr:\n%s\nserver stderr:\n%s", strings.Join(args, " "), code, out, errOut, s.p.stderr)
	}
	return out
}

// waitNodeReady waits for the node's Ready condition.
func (s *labServer) waitNodeReady() {
	s.t.Helper()
	cs := s.clientset()
	s.waitUntil("node "+s.name+" Ready", 90*time.Second, func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, s.name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "", nil
			}
		}
		return false, nil
	})
}

// waitUntil is waitUntil with the server's log in the failure message.
func (s *labServer) waitUntil(what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	s.t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, cond); err != nil {
		s.t.Fatalf("waiting for %s: %v; server stderr:\n%s", what, err, s.p.stderr)
	}
}

// waitUntil polls cond every 100ms until it holds, failing t after
// timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// httpFrom is an HTTP client whose connections start inside ns, with no
// keep-alive so that every request is a new connection the proxy balances.
func httpFrom(ns *netlab.NS) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext:       ns.DialContext,
			DisableKeepAlives: true,
			Proxy:             nil,
		},
	}
}

// get fetches url and returns the body, or an error.
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return string(body), nil
}

// dialRefused reports whether a TCP connection from ns to addr is refused
// at once (rather than accepted or left to time out).
func dialRefused(ns *netlab.NS, addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := ns.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH)
}
