package images_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet/images"
	"github.com/tinykube/tinykube/kubelet/internal/nodetest"
)

func TestImportedImagesAreUnpackedUnderTheirNames(t *testing.T) {
	_, c := nodetest.Containerd(t)
	ctx := context.Background()
	server, err := testimage.Server()
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := testimage.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := testimage.WriteFile(filepath.Join(dir, "server.tar"), func(w io.Writer) error { return testimage.WriteOCI(w, server) }); err != nil {
		t.Fatal(err)
	}
	// docker save names images the short way; import normalizes them.
	if err := testimage.WriteFile(filepath.Join(dir, "busybox.tar"), func(w io.Writer) error {
		return testimage.WriteDockerArchive(w, busybox, "busybox:latest")
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		run  func() ([]string, error)
		want []string
	}{
		{"one OCI tarball", func() ([]string, error) { return images.ImportFile(ctx, c, filepath.Join(dir, "server.tar")) }, []string{testimage.ServerRef}},
		{"a directory of OCI and docker-archive tarballs", func() ([]string, error) { return images.ImportDir(ctx, c, dir) }, []string{testimage.BusyboxRef, testimage.ServerRef}},
		{"a missing directory", func() ([]string, error) { return images.ImportDir(ctx, c, filepath.Join(dir, "none")) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.run()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("imported %v, want %v", got, tt.want)
			}
			for i, name := range tt.want {
				if got[i] != name {
					t.Fatalf("imported %v, want %v", got, tt.want)
				}
				img, err := c.GetImage(ctx, name)
				if err != nil {
					t.Fatalf("image %s not in containerd: %v", name, err)
				}
				ok, err := img.IsUnpacked(ctx, images.Snapshotter)
				if err != nil || !ok {
					t.Fatalf("image %s not unpacked into %s: %v", name, images.Snapshotter, err)
				}
			}
		})
	}
}

func TestImportRejectsANonImage(t *testing.T) {
	_, c := nodetest.Containerd(t)
	path := filepath.Join(t.TempDir(), "junk.tar")
	if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := images.ImportFile(context.Background(), c, path); err == nil {
		t.Fatal("importing junk succeeded")
	}
}

func TestImportFilesLoadsIntoARunningContainerd(t *testing.T) {
	s, c := nodetest.Containerd(t)
	busybox, err := testimage.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	path := testimage.OCITarball(t, busybox)
	var out strings.Builder
	queue := t.TempDir()
	if err := images.ImportFiles(context.Background(), s.Address(), queue, []string{path}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "imported "+testimage.BusyboxRef) {
		t.Errorf("output %q does not name the imported image", out.String())
	}
	if _, err := c.GetImage(context.Background(), testimage.BusyboxRef); err != nil {
		t.Fatalf("image not in containerd: %v", err)
	}
	if entries, _ := os.ReadDir(queue); len(entries) != 0 {
		t.Errorf("tarball was queued although containerd runs")
	}
}
