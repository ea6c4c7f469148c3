package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImagesImportQueuesTarballsWhenTinykubeIsNotRunning(t *testing.T) {
	dataDir := t.TempDir()
	tarball := filepath.Join(t.TempDir(), "app.tar")
	if err := os.WriteFile(tarball, []byte("tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"images", "import", "--data-dir", dataDir, tarball}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	queued := filepath.Join(dataDir, "agent", "images", "app.tar")
	if data, err := os.ReadFile(queued); err != nil || string(data) != "tarball" {
		t.Fatalf("tarball not queued at %s: %v", queued, err)
	}
	if !strings.Contains(stdout.String(), "imported when tinykube starts") {
		t.Errorf("output does not say when the image is imported: %q", stdout.String())
	}
}

func TestImagesImportFailsOnAMissingFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"images", "import", "--data-dir", t.TempDir(), "/nonexistent/app.tar"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "/nonexistent/app.tar") {
		t.Fatalf("exit %d, stderr %q: want a failure naming the file", code, stderr.String())
	}
}
