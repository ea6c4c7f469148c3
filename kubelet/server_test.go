package kubelet_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/pki"
	corev1 "k8s.io/api/core/v1"
	kptr "k8s.io/utils/ptr"
)

// startNodeWithAPI runs the API server with a kubelet client certificate
// and a kubelet serving its HTTPS API, both from one test CA, as `tinykube
// server` wires them.
func startNodeWithAPI(t *testing.T) *testNode {
	t.Helper()
	caDir := t.TempDir()
	bundle, err := pki.Ensure(pki.Config{Dir: caDir, ServiceIP: netip.MustParseAddr("10.43.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	nb, err := pki.EnsureNode(pki.NodeConfig{CADir: caDir, Dir: t.TempDir(), NodeName: nodeName, IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	api := apiservertest.Start(t, apiservertest.Options{API: apiserver.Config{
		KubeletTransport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: bundle.ClientCAs, Certificates: []tls.Certificate{bundle.KubeletClient}}},
	}})
	return startNode(t, api, func(c *kubelet.Config) {
		c.ServingCert = &nb.Serving
		c.ClientCAs = nb.ClientCAs
		c.ListenAddress = "127.0.0.1:0"
	})
}

func TestLogsThroughTheAPIServer(t *testing.T) {
	n := startNodeWithAPI(t)
	n.create(newPod("talk", testimage.BusyboxRef).command("sh", "-c", "echo one; echo two; echo three; while true; do echo tick; sleep 0.2; done").obj())
	n.create(newPod("crash", testimage.BusyboxRef).command("sh", "-c", "echo run; exit 1").obj())
	n.waitPod("talk", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	n.waitPod("crash", 60*time.Second, "restarted", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	ctx := context.Background()
	pods := n.client.CoreV1().Pods("default")
	logs := func(name string, o *corev1.PodLogOptions) string {
		t.Helper()
		b, err := pods.GetLogs(name, o).DoRaw(ctx)
		if err != nil {
			t.Fatalf("logs %s %+v: %v", name, o, err)
		}
		return string(b)
	}

	if got := logs("talk", &corev1.PodLogOptions{}); !strings.HasPrefix(got, "one\ntwo\nthree\n") {
		t.Errorf("logs = %q, want the container's output from the start", got)
	}
	if got := logs("talk", &corev1.PodLogOptions{TailLines: kptr.To(int64(1))}); got != "tick\n" && got != "three\n" {
		t.Errorf("logs --tail=1 = %q, want one line", got)
	}
	if got := logs("talk", &corev1.PodLogOptions{Timestamps: true, LimitBytes: kptr.To(int64(100))}); !strings.Contains(got, "Z one\n") {
		t.Errorf("logs --timestamps = %q, want RFC 3339 timestamps before the lines", got)
	}
	if got := logs("crash", &corev1.PodLogOptions{Previous: true}); got != "run\n" {
		t.Errorf("logs --previous = %q, want the previous attempt's output", got)
	}
	// kubectl logs reads through Stream, which turns the error into
	// upstream's message.
	if _, err := pods.GetLogs("talk", &corev1.PodLogOptions{Previous: true}).Stream(ctx); err == nil || err.Error() != `previous terminated container "main" in pod "talk" not found` {
		t.Errorf("logs --previous without a previous attempt: %v", err)
	}

	// -f streams new lines as they are written.
	stream, err := pods.GetLogs("talk", &corev1.PodLogOptions{Follow: true, TailLines: kptr.To(int64(0))}).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stream)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for i := 0; i < 2; i++ {
		select {
		case l := <-lines:
			if l != "tick" {
				t.Errorf("followed line %q, want tick", l)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no new line followed within 10s")
		}
	}
	_ = io.Discard
}

func TestKubeletAPIRejectsClientsWithoutACertificate(t *testing.T) {
	n := startNodeWithAPI(t)
	node, err := n.client.CoreV1().Nodes().Get(context.Background(), nodeName, metav1GetOptions())
	if err != nil {
		t.Fatal(err)
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get("https://127.0.0.1:" + itoa(port) + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("anonymous client got %s, want the TLS handshake refused", resp.Status)
	}
}
