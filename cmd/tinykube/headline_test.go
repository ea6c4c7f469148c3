//go:build !nokubectl

package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// classicManifest is the nginx example of the Kubernetes documentation,
// the shape users apply first, with the test's HTTP server standing in for
// nginx (no registry is reachable from the lab).
const classicManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: tinykube/testserver:v1
        env:
        - name: PORT
          value: "80"
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: nginx-service
spec:
  type: NodePort
  selector:
    app: nginx
  ports:
  - port: 80
    targetPort: 80
`

const fixedNodePortService = `apiVersion: v1
kind: Service
metadata:
  name: nginx-fixed
spec:
  type: NodePort
  selector:
    app: nginx
  ports:
  - port: 80
    targetPort: 80
    nodePort: 30007
`

const labNodeIP = "192.168.77.10"

// answerers requests url from client until every name in want answered (the
// body names the pod), or the deadline passes.
func answerers(t *testing.T, what string, fetch func() (string, error), want map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	var lastErr error
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		body, err := fetch()
		if err != nil {
			lastErr = err
			time.Sleep(100 * time.Millisecond) // retry pacing, not synchronisation
			continue
		}
		name := strings.TrimSpace(strings.TrimPrefix(body, "hello from "))
		if !want[name] {
			t.Fatalf("%s: answer %q from a pod that is not one of %v", what, body, want)
		}
		seen[name] = true
		if len(seen) == len(want) {
			return
		}
	}
	t.Fatalf("%s: only %v of %v answered within 60s; last error %v", what, seen, want, lastErr)
}

// TestHeadlineNodePort is the headline case: the classic nginx Deployment
// and NodePort Service applied with kubectl on a node, reached from an
// external client through NODE_IP:nodePort, and from the node itself.
func TestHeadlineNodePort(t *testing.T) {
	lan := newLabNet(t)
	node := newLabServer(t, lan, "node1", labNodeIP)
	node.start()
	node.waitNodeReady()

	node.kubectlOK(classicManifest, "apply", "-f", "-")
	node.kubectlOK("", "rollout", "status", "deployment/nginx-deployment", "--timeout=120s")

	out := node.kubectlOK("", "get", "service", "nginx-service")
	m := regexp.MustCompile(`nginx-service\s+NodePort\s+10\.43\.\d+\.\d+\s+<none>\s+80:(\d+)/TCP\s+`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("kubectl get service nginx-service:\n%s", out)
	}
	nodePort, _ := strconv.Atoi(m[1])
	if nodePort < 30000 || nodePort > 32767 {
		t.Fatalf("nodePort %d outside 30000-32767", nodePort)
	}

	cs := node.clientset()
	pods, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, p := range pods.Items {
		want[p.Name] = true
	}
	if len(want) != 2 {
		t.Fatalf("%d nginx pods, want 2", len(want))
	}

	external := httpFrom(lan.client)
	onNode := httpFrom(node.ns)
	t.Run("external client through NODE_IP:nodePort", func(t *testing.T) {
		url := fmt.Sprintf("http://%s:%d/", labNodeIP, nodePort)
		answerers(t, url, func() (string, error) { return get(external, url) }, want)
	})
	t.Run("node itself through 127.0.0.1:nodePort", func(t *testing.T) {
		url := fmt.Sprintf("http://127.0.0.1:%d/", nodePort)
		answerers(t, url, func() (string, error) { return get(onNode, url) }, want)
	})
	t.Run("fixed nodePort 30007", func(t *testing.T) {
		node := node.in(t)
		node.kubectlOK(fixedNodePortService, "apply", "-f", "-")
		out := node.kubectlOK("", "get", "service", "nginx-fixed")
		if !strings.Contains(out, "80:30007/TCP") {
			t.Fatalf("kubectl get service nginx-fixed:\n%s", out)
		}
		url := fmt.Sprintf("http://%s:30007/", labNodeIP)
		answerers(t, url, func() (string, error) { return get(external, url) }, want)
	})
	t.Run("tinykube service url", func(t *testing.T) {
		out, errOut, code := node.tinykube("service", "url", "nginx-service", "--kubeconfig", node.kubeconfig)
		if want := fmt.Sprintf("http://%s:%d\n", labNodeIP, nodePort); code != 0 || out != want {
			t.Fatalf("tinykube service url: exit %d, %q (want %q); stderr %s", code, out, want, errOut)
		}
	})
	// Last, as it stops the server.
	t.Run("the server's log is one format from start to shutdown", func(t *testing.T) {
		checkLogAfterShutdown(t, node.in(t))
	})
}
