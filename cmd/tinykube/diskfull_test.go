package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestServerOnAFullDisk runs a server whose data dir is on a small file
// system and fills it: writes fail with a 500 Status that says the disk is
// full and a log line, reads go on, and once space is freed writes succeed
// again; after a restart every acknowledged object is there, intact.
func TestServerOnAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting a small file system needs root")
		}
		t.Skip("mounting a small file system needs root")
	}
	dataDir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tinykube-test", dataDir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dataDir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dataDir, err, out)
		}
	})
	p := startServer(t, dataDir)
	// Space to give back later, taken once the server has started.
	ballast := filepath.Join(dataDir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cs := p.clientset(t)
	ctx := context.Background()
	data := map[string]string{"v": strings.Repeat("x", 256<<10)}
	acked := []string{}
	var full error
	for i := range 200 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%03d", i)}, Data: data}
		if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			full = err
			break
		}
		acked = append(acked, cm.Name)
	}
	if full == nil {
		t.Fatal("24 MiB took 200 ConfigMaps of 256 KiB")
	}
	if !apierrors.IsInternalError(full) || !strings.Contains(full.Error(), "no space left") {
		t.Fatalf("a write on a full disk: %v; want a 500 saying the disk is full", full)
	}
	if !strings.Contains(p.stderr.String(), `msg="request failed"`) || !strings.Contains(p.stderr.String(), "no space left") {
		t.Errorf("no log line for the failed write; stderr:\n%s", p.stderr)
	}
	check := func() {
		t.Helper()
		list, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		got := map[string]bool{}
		for _, cm := range list.Items {
			got[cm.Name] = cm.Data["v"] == data["v"]
		}
		for _, name := range acked {
			if !got[name] {
				t.Fatalf("acknowledged ConfigMap %s is missing or changed", name)
			}
		}
	}
	check() // reads go on

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}, Data: data}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a write after space was freed: %v", err)
	}
	acked = append(acked, "after")
	if err := p.stop(t); err != nil {
		t.Fatalf("stopping the server: %v", err)
	}
	p = startServer(t, dataDir)
	cs = p.clientset(t)
	check()
}
