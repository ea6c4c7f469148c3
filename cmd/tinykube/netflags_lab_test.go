//go:build !nokubectl

package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

const oneServerAndNodePort = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: web
    image: tinykube/testserver:v1
    env: [{name: PORT, value: "80"}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 80, nodePort: 30008}]
`

// TestNodePortAddressesFlushRulesAndUninstall: --nodeport-addresses
// narrows where NodePorts answer; the proxy's rules survive a stop (so
// Services keep working across a restart) unless --flush-rules; `tinykube
// uninstall` removes what is left.
func TestNodePortAddressesFlushRulesAndUninstall(t *testing.T) {
	lan := newLabNet(t)
	node := newLabServer(t, lan, "node1", labNodeIP, "--nodeport-addresses", "127.0.0.0/8")
	node.start()
	node.waitNodeReady()
	node.kubectlOK(oneServerAndNodePort, "apply", "-f", "-")
	node.kubectlOK("", "wait", "--for=condition=Ready", "pod/web", "--timeout=120s")

	onNode := httpFrom(node.ns)
	answers(t, node, onNode, "http://127.0.0.1:30008/")
	if addr := net.JoinHostPort(labNodeIP, "30008"); !dialRefused(lan.client, addr) {
		t.Fatalf("%s answered though --nodeport-addresses is 127.0.0.0/8", addr)
	}

	tables := func() string { return node.ns.Exec("nft", "list", "tables") }
	node.stop(syscall.SIGTERM)
	if out := tables(); !strings.Contains(out, "table inet tinykube") {
		t.Fatalf("the proxy's table is gone after a stop without --flush-rules:\n%s", out)
	}
	out, errOut, code := node.tinykube("uninstall", "--data-dir", node.dataDir)
	if code != 0 {
		t.Fatalf("tinykube uninstall: exit %d: %s%s", code, out, errOut)
	}
	if out := tables(); strings.Contains(out, "tinykube") {
		t.Fatalf("tables left after tinykube uninstall:\n%s", out)
	}

	node.args = append(node.args, "--flush-rules")
	node.start()
	node.waitNodeReady()
	answers(t, node, onNode, "http://127.0.0.1:30008/")
	// A running server's data dir is not uninstalled under it.
	if _, _, code := node.tinykube("uninstall", "--data-dir", node.dataDir); code == 0 {
		t.Fatal("tinykube uninstall succeeded while the server runs")
	}
	node.stop(syscall.SIGTERM)
	if out := tables(); strings.Contains(out, "table inet tinykube") {
		t.Fatalf("the proxy's table is left after a stop with --flush-rules:\n%s", out)
	}
}

// answers waits until url answers from the node with the test server's
// greeting.
func answers(t *testing.T, node *labServer, c *http.Client, url string) {
	t.Helper()
	node.in(t).waitUntil(url+" answering", 60*time.Second, func(context.Context) (bool, error) {
		body, err := get(c, url)
		return err == nil && strings.HasPrefix(body, "hello from "), nil
	})
}
