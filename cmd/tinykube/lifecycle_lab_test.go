//go:build !nokubectl

package main

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// checkLogAfterShutdown ends node's pods, stops its server with SIGTERM
// and checks that every line the server wrote to stderr, from start-up
// through its pods' lives to shutdown, is one slog text line with time,
// level, message and component, and that each component announced its
// readiness once.
func checkLogAfterShutdown(t *testing.T, node *labServer) {
	t.Helper()
	cs := node.clientset()
	ctx := context.Background()
	if err := cs.AppsV1().Deployments("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	node.waitUntil("the pods gone", 60*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 0, nil
	})
	stderr := node.p.stderr
	node.stop(syscall.SIGTERM)

	lines, bad := checkLog(stderr.All())
	for _, b := range bad {
		t.Errorf("not in the log format: %s", b)
	}
	ready := map[string]int{}
	for _, l := range lines {
		if l["msg"] == "ready" {
			ready[l["component"]]++
		}
	}
	for _, c := range []string{"apiserver", "controller-manager", "scheduler", "containerd", "kubelet", "nodenet", "proxy", "dns"} {
		if ready[c] != 1 {
			t.Errorf("component %s announced readiness %d times, want once", c, ready[c])
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr)
	}
}

// TestAComponentThatCannotStartStopsTheServer binds the kubelet's port in
// the node's namespace before the server starts: the kubelet fails, and
// the server stops within 5 s with a non-zero status and one line naming
// the kubelet and the cause.
func TestAComponentThatCannotStartStopsTheServer(t *testing.T) {
	lan := newLabNet(t)
	node := newLabServer(t, lan, "node1", labNodeIP)
	l, err := node.ns.Listen("tcp", net.JoinHostPort("0.0.0.0", "10250"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := node.startNoWait()

	var failed logLine
	waitUntil(t, "the server's failure line", 90*time.Second, func(context.Context) (bool, error) {
		for _, l := range logLines(p.stderr.All()) {
			if l["level"] == "ERROR" && l["msg"] == "failed; stopping" {
				failed = l
				return true, nil
			}
		}
		return false, nil
	})
	if failed["component"] != "kubelet" || !strings.Contains(failed["err"], "address already in use") {
		t.Errorf("failure line names %q: %q, want the kubelet and the bound port", failed["component"], failed["err"])
	}
	select {
	case err := <-p.exited:
		if err == nil {
			t.Error("the server exited with status 0")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the server still runs 5 s after its kubelet failed; stderr:\n%s", p.stderr)
	}
	node.p.cmd = nil
	if _, bad := checkLog(p.stderr.All()); len(bad) > 0 {
		t.Errorf("lines not in the log format: %q", bad)
	}
}

// logLines are the lines of log that parse.
func logLines(log string) []logLine {
	lines, _ := checkLog(log)
	return lines
}
