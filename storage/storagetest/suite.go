// Package storagetest is the conformance suite every storage backend
// passes: revisions, compare-and-swap, consistent pagination, watch order
// and exactly-once delivery, resume, compaction, slow watchers and the size
// limit. A backend's own test calls Run with a way to open a fresh store.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tinykube/tinykube/storage"
)

// Backend describes the store under test.
type Backend struct {
	// Open returns a new, empty store; the suite closes it.
	Open func(t testing.TB) storage.Interface
	// WatchBuffer is how many events a watcher may fall behind before the
	// backend drops it, as configured by Open.
	WatchBuffer int
}

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Interface, b Backend)
	}{
		{"revision grows by one per committed write", testRevisionPerWrite},
		{"create refuses an existing key", testCreateExisting},
		{"update is compare-and-swap", testUpdateCAS},
		{"delete honours its precondition and returns the last value", testDelete},
		{"get reads retained revisions", testGetAtRevision},
		{"empty key and oversized value are refused", testLimits},
		{"guaranteed update retries conflicts", testGuaranteedUpdate},
		{"list pages by prefix in key order", testListPaging},
		{"list reads at a given revision", testListAtRevision},
		{"pagination stays at the first page's revision while writes go on", testPaginationConsistency},
		{"watch delivers every write in order exactly once under concurrent writers", testWatchConcurrentWriters},
		{"watch carries previous values and filters by prefix", testWatchEvents},
		{"watch resumes from any retained revision", testWatchResume},
		{"watch of a future revision is refused", testWatchFuture},
		{"watch ends cleanly on stop and on context end", testWatchStop},
		{"watch reports progress on request, after the events before it", testWatchProgress},
		{"compaction discards old history only", testCompaction},
		{"a slow watcher is dropped without blocking others", testSlowWatcher},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := b.Open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s, b)
		})
	}
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCreate(t testing.TB, s storage.Interface, key, value string) storage.KeyValue {
	t.Helper()
	kv, err := s.Create(ctxFor(t), key, []byte(value))
	if err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
	return kv
}

func mustRevision(t testing.TB, s storage.Interface) int64 {
	t.Helper()
	rev, err := s.Revision(ctxFor(t))
	if err != nil {
		t.Fatalf("revision: %v", err)
	}
	return rev
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func testRevisionPerWrite(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	start := mustRevision(t, s)
	if start < 1 {
		t.Fatalf("empty store at revision %d, want at least 1 (0 means 'any' to clients)", start)
	}
	a := mustCreate(t, s, "/a", "1")
	if a.ModRevision != start+1 || a.CreateRevision != start+1 {
		t.Fatalf("first create got create/mod revision %d/%d, want %d", a.CreateRevision, a.ModRevision, start+1)
	}
	up, err := s.Update(ctx, "/a", []byte("2"), a.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	if up.ModRevision != start+2 || up.CreateRevision != a.CreateRevision {
		t.Fatalf("update got create/mod %d/%d, want %d/%d", up.CreateRevision, up.ModRevision, a.CreateRevision, start+2)
	}
	// Failed writes do not consume a revision.
	if _, err := s.Create(ctx, "/a", []byte("x")); err == nil {
		t.Fatal("second create succeeded")
	}
	if _, err := s.Update(ctx, "/a", []byte("x"), a.ModRevision); err == nil {
		t.Fatal("stale update succeeded")
	}
	del, err := s.Delete(ctx, "/a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if del.ModRevision != start+3 {
		t.Fatalf("delete at revision %d, want %d", del.ModRevision, start+3)
	}
	if got := mustRevision(t, s); got != start+3 {
		t.Fatalf("store at revision %d after three writes from %d", got, start)
	}
	again := mustCreate(t, s, "/a", "3")
	if again.CreateRevision != start+4 {
		t.Fatalf("re-created key has create revision %d, want %d", again.CreateRevision, start+4)
	}
}

func testCreateExisting(t *testing.T, s storage.Interface, _ Backend) {
	first := mustCreate(t, s, "/k", "v1")
	_, err := s.Create(ctxFor(t), "/k", []byte("v2"))
	wantErr(t, "create of existing key", err, storage.ErrAlreadyExists)
	got, err := s.Get(ctxFor(t), "/k", 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Value) != "v1" || got.ModRevision != first.ModRevision {
		t.Fatalf("existing key changed by refused create: %q at %d", got.Value, got.ModRevision)
	}
}

func testUpdateCAS(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	kv := mustCreate(t, s, "/k", "v1")
	up, err := s.Update(ctx, "/k", []byte("v2"), kv.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(ctx, "/k", []byte("lost"), kv.ModRevision)
	wantErr(t, "update with a stale revision", err, storage.ErrConflict)
	_, err = s.Update(ctx, "/missing", []byte("x"), 1)
	wantErr(t, "update of a missing key", err, storage.ErrNotFound)
	got, err := s.Get(ctx, "/k", 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Value) != "v2" || got.ModRevision != up.ModRevision {
		t.Fatalf("got %q at %d, want v2 at %d", got.Value, got.ModRevision, up.ModRevision)
	}
}

func testDelete(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	kv := mustCreate(t, s, "/k", "v1")
	_, err := s.Delete(ctx, "/k", kv.ModRevision+100)
	wantErr(t, "delete with a wrong precondition", err, storage.ErrConflict)
	del, err := s.Delete(ctx, "/k", kv.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	if string(del.Value) != "v1" || del.CreateRevision != kv.CreateRevision || del.ModRevision <= kv.ModRevision {
		t.Fatalf("delete returned %q create %d mod %d", del.Value, del.CreateRevision, del.ModRevision)
	}
	_, err = s.Get(ctx, "/k", 0)
	wantErr(t, "get after delete", err, storage.ErrNotFound)
	_, err = s.Delete(ctx, "/k", 0)
	wantErr(t, "second delete", err, storage.ErrNotFound)
}

func testGetAtRevision(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	v1 := mustCreate(t, s, "/k", "v1")
	v2, err := s.Update(ctx, "/k", []byte("v2"), v1.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	del, err := s.Delete(ctx, "/k", 0)
	if err != nil {
		t.Fatal(err)
	}
	v3 := mustCreate(t, s, "/k", "v3")
	other := mustCreate(t, s, "/other", "o")
	cases := []struct {
		rev       int64
		want      string
		wantMod   int64
		wantFound bool
	}{
		{v1.ModRevision - 1, "", 0, false},
		{v1.ModRevision, "v1", v1.ModRevision, true},
		{v2.ModRevision, "v2", v2.ModRevision, true},
		{del.ModRevision, "", 0, false},
		{v3.ModRevision, "v3", v3.ModRevision, true},
		{other.ModRevision, "v3", v3.ModRevision, true},
		{0, "v3", v3.ModRevision, true},
	}
	for _, c := range cases {
		got, err := s.Get(ctx, "/k", c.rev)
		if !c.wantFound {
			wantErr(t, fmt.Sprintf("get at %d", c.rev), err, storage.ErrNotFound)
			continue
		}
		if err != nil {
			t.Fatalf("get at %d: %v", c.rev, err)
		}
		if string(got.Value) != c.want || got.ModRevision != c.wantMod {
			t.Fatalf("get at %d: %q at %d, want %q at %d", c.rev, got.Value, got.ModRevision, c.want, c.wantMod)
		}
	}
	_, err = s.Get(ctx, "/k", other.ModRevision+1)
	wantErr(t, "get at a future revision", err, storage.ErrFutureRevision)
}

func testLimits(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	_, err := s.Create(ctx, "", []byte("x"))
	wantErr(t, "create with an empty key", err, storage.ErrInvalidKey)
	big := make([]byte, storage.MaxValueSize+1)
	_, err = s.Create(ctx, "/big", big)
	wantErr(t, "create over the size limit", err, storage.ErrValueTooLarge)
	kv, err := s.Create(ctx, "/big", big[:storage.MaxValueSize])
	if err != nil {
		t.Fatalf("create at exactly the limit: %v", err)
	}
	_, err = s.Update(ctx, "/big", big, kv.ModRevision)
	wantErr(t, "update over the size limit", err, storage.ErrValueTooLarge)
	got, err := s.Get(ctx, "/big", 0)
	if err != nil || len(got.Value) != storage.MaxValueSize {
		t.Fatalf("value at the limit did not survive: %d bytes, %v", len(got.Value), err)
	}
}

func testGuaranteedUpdate(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	mustCreate(t, s, "/counter", "0")
	const workers, each = 8, 25
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for range each {
				_, err := storage.GuaranteedUpdate(ctx, s, "/counter", func(cur storage.KeyValue) ([]byte, error) {
					var n int
					fmt.Sscan(string(cur.Value), &n)
					return []byte(fmt.Sprint(n + 1)), nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, "/counter", 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Value) != fmt.Sprint(workers*each) {
		t.Fatalf("counter is %s after %d increments: an update was lost", got.Value, workers*each)
	}
	_, err = storage.GuaranteedUpdate(ctx, s, "/missing", func(storage.KeyValue) ([]byte, error) { return nil, nil })
	wantErr(t, "guaranteed update of a missing key", err, storage.ErrNotFound)
}
