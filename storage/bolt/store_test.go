package bolt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tinykube/tinykube/storage"
)

func TestReopenKeepsDataRevisionAndHistory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Create(ctx, "/a", []byte("1"))
	if _, err := s.Update(ctx, "/a", []byte("2"), a.ModRevision); err != nil {
		t.Fatal(err)
	}
	rev, _ := s.Revision(ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := s.Revision(ctx); got != rev {
		t.Fatalf("revision %d after reopen, was %d", got, rev)
	}
	kv, err := s.Get(ctx, "/a", 0)
	if err != nil || string(kv.Value) != "2" {
		t.Fatalf("after reopen /a is %q, %v", kv.Value, err)
	}
	// A client that watched before the restart resumes where it was.
	w, err := s.Watch(ctx, "/", a.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev := <-w.Events()
	if ev.Type != storage.Modified || string(ev.KV.Value) != "2" || string(ev.PrevKV.Value) != "1" {
		t.Fatalf("resumed watch got %s %q (prev %v)", ev.Type, ev.KV.Value, ev.PrevKV)
	}
	next, err := s.Create(ctx, "/b", nil)
	if err != nil || next.ModRevision != rev+1 {
		t.Fatalf("first write after reopen at %d (%v), want %d", next.ModRevision, err, rev+1)
	}
}

func TestOpenFailsFastWhenFileIsHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v, want a clear 'locked' error", err)
	}
}

func TestOpenReportsDamageAndLeavesFileAlone(t *testing.T) {
	garbage := func(t *testing.T, path string) {
		if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	truncated := func(t *testing.T, path string) {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			if _, err := s.Create(context.Background(), "/k/"+strings.Repeat("x", i), bytes.Repeat([]byte("v"), 4096)); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		info, _ := os.Stat(path)
		if err := os.Truncate(path, info.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	clobberedMeta := func(t *testing.T, path string) {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// Both meta pages: bbolt can then trust neither.
		page := os.Getpagesize()
		for _, off := range []int64{16, int64(page) + 16} {
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xff}, 64), off); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, damage := range map[string]func(*testing.T, string){
		"not a database": garbage,
		"truncated":      truncated,
		"meta clobbered": clobberedMeta,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			damage(t, path)
			before, _ := os.ReadFile(path)
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("damaged file opened without complaint")
			}
			if !strings.Contains(err.Error(), "corrupt or truncated") && !strings.Contains(err.Error(), "invalid") {
				t.Fatalf("unclear error for a damaged file: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatal("opening a damaged file changed it")
			}
		})
	}
}

func TestBackgroundCompactionKeepsRetention(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := openTemp(t, Options{Retention: time.Minute, CompactionInterval: time.Millisecond, Now: clock.Now})
	first, _ := s.Create(ctx, "/a", []byte("1"))
	if _, err := s.Update(ctx, "/a", []byte("2"), first.ModRevision); err != nil {
		t.Fatal(err)
	}
	// The compactor notes revisions as (fake) time passes; the note taken
	// now must not be compacted until a minute later.
	waitFor(t, "the compactor to note the revision", func() bool { return clock.reads() > 3 })
	if s.CompactedRevision() != 0 {
		t.Fatalf("compacted to %d within the retention", s.CompactedRevision())
	}
	rev, _ := s.Revision(ctx)
	clock.advance(time.Minute + time.Second)
	waitFor(t, "history older than the retention to be compacted", func() bool { return s.CompactedRevision() >= rev })
	if _, err := s.Get(ctx, "/a", first.ModRevision); !errors.Is(err, storage.ErrCompacted) {
		t.Fatalf("get of compacted revision: %v", err)
	}
	if kv, err := s.Get(ctx, "/a", 0); err != nil || string(kv.Value) != "2" {
		t.Fatalf("latest value after compaction: %q, %v", kv.Value, err)
	}
}

func TestCloseEndsWatchesAndRefusesWrites(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(context.Background(), "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for range w.Events() {
	}
	if !errors.Is(w.Err(), storage.ErrClosed) {
		t.Fatalf("watch ended with %v, want ErrClosed", w.Err())
	}
	if _, err := s.Create(context.Background(), "/x", nil); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := s.Get(context.Background(), "/x", 0); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}
