package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tinykube/tinykube/storage"
)

// smallFS mounts a tmpfs of size bytes for the test and returns its path;
// it is unmounted at cleanup. It needs root: without it the test skips,
// except under CI=true, where it fails.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting a small file system needs root")
		}
		t.Skip("mounting a small file system needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tinykube-test", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestFullDiskFailsWritesKeepsReadsAndRecovers fills the data dir's file
// system: writes fail with ErrNoSpace, reads go on, nothing acknowledged is
// lost, and once space is freed writes succeed again, also after a reopen.
func TestFullDiskFailsWritesKeepsReadsAndRecovers(t *testing.T) {
	dir := smallFS(t, "8m")
	ctx := context.Background()
	// Space to give back later.
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()

	value := bytes.Repeat([]byte("x"), 64<<10)
	acked := map[string]bool{}
	var fullErr error
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("/configmaps/default/cm-%04d", i)
		if _, err := s.Create(ctx, key, value); err != nil {
			fullErr = err
			break
		}
		acked[key] = true
	}
	if fullErr == nil {
		t.Fatal("8 MiB took 1000 writes of 64 KiB")
	}
	if !errors.Is(fullErr, storage.ErrNoSpace) {
		t.Fatalf("write on a full disk: %v, want ErrNoSpace", fullErr)
	}
	t.Logf("%d writes acknowledged before the disk was full: %v", len(acked), fullErr)

	check := func(s *Store) {
		t.Helper()
		list, err := s.List(ctx, "/configmaps/", storage.ListOptions{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		got := map[string]bool{}
		for _, kv := range list.KVs {
			got[kv.Key] = true
			if !bytes.Equal(kv.Value, value) {
				t.Fatalf("%s holds %d bytes, not what was written", kv.Key, len(kv.Value))
			}
		}
		for k := range acked {
			if !got[k] {
				t.Fatalf("acknowledged %s is missing", k)
			}
		}
	}
	// Reads go on while the disk is full.
	check(s)
	if _, err := s.Get(ctx, "/configmaps/default/cm-0000", 0); err != nil {
		t.Fatalf("get on a full disk: %v", err)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	kv, err := s.Create(ctx, "/configmaps/default/after", value)
	if err != nil {
		t.Fatalf("write after space was freed: %v", err)
	}
	acked[kv.Key] = true
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{}); err != nil {
		t.Fatalf("reopen after a full disk: %v", err)
	}
	check(s)
}
