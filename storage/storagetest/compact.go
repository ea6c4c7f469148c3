package storagetest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/tinykube/tinykube/storage"
)

func testCompaction(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	// History before the compaction point: creates, updates, a delete, and
	// a key deleted and created again.
	a := mustCreate(t, s, "/cp/a", "a1")
	if _, err := s.Update(ctx, "/cp/a", []byte("a2"), a.ModRevision); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "/cp/gone", "g")
	if _, err := s.Delete(ctx, "/cp/gone", 0); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "/cp/again", "1")
	if _, err := s.Delete(ctx, "/cp/again", 0); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "/cp/b", "b1")
	paged, err := s.List(ctx, "/cp/", storage.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	point := mustRevision(t, s)
	stateAtPoint, _, _ := listAll(t, s, "/cp/", storage.ListOptions{Revision: point})

	// History after it.
	if _, err := storage.GuaranteedUpdate(ctx, s, "/cp/a", func(storage.KeyValue) ([]byte, error) { return []byte("a3"), nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "/cp/b", 0); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "/cp/again", "2")
	after := mustRevision(t, s)

	if err := s.Compact(ctx, point); err != nil {
		t.Fatal(err)
	}
	if got := s.CompactedRevision(); got != point {
		t.Fatalf("compacted revision %d, want %d", got, point)
	}
	if err := s.Compact(ctx, point-2); err != nil {
		t.Fatalf("compacting to an older revision is a no-op, got %v", err)
	}

	_, err = s.Get(ctx, "/cp/a", point-1)
	wantErr(t, "get below the compaction point", err, storage.ErrCompacted)
	_, err = s.List(ctx, "/cp/", storage.ListOptions{Revision: point - 1})
	wantErr(t, "list below the compaction point", err, storage.ErrCompacted)
	_, err = s.Watch(ctx, "/cp/", point-1)
	wantErr(t, "watch from below the compaction point", err, storage.ErrCompacted)
	if paged.Revision < point {
		_, err = s.List(ctx, "/cp/", storage.ListOptions{Continue: paged.Continue})
		wantErr(t, "continuing a list read before the compaction point", err, storage.ErrCompacted)
	}

	// The state at the compaction point, and everything after, remain.
	got, _, _ := listAll(t, s, "/cp/", storage.ListOptions{Revision: point, Limit: 1})
	if !reflect.DeepEqual(got, stateAtPoint) {
		t.Fatalf("state at the compaction point changed: %v, was %v", got, stateAtPoint)
	}
	for key, want := range map[string]string{"/cp/a": "a2", "/cp/b": "b1"} {
		kv, err := s.Get(ctx, key, point)
		if err != nil || string(kv.Value) != want {
			t.Fatalf("get %s at the compaction point: %q, %v; want %q", key, kv.Value, err, want)
		}
	}
	for _, key := range []string{"/cp/gone", "/cp/again"} {
		_, err := s.Get(ctx, key, point)
		wantErr(t, fmt.Sprintf("get %s, deleted before the compaction point", key), err, storage.ErrNotFound)
	}
	events := collect(t, mustWatch(t, s, "/cp/", point), int(after-point))
	wantTypes := []storage.EventType{storage.Modified, storage.Deleted, storage.Added}
	for i, ev := range events {
		if ev.Type != wantTypes[i] || ev.Revision() != point+int64(i)+1 {
			t.Fatalf("event %d after compaction: %s at %d", i, ev.Type, ev.Revision())
		}
		if ev.Type != storage.Added && ev.PrevKV == nil {
			t.Fatalf("event %d after compaction lost its previous value", i)
		}
	}
	if string(events[0].PrevKV.Value) != "a2" || string(events[1].PrevKV.Value) != "b1" {
		t.Fatalf("previous values after compaction: %q, %q", events[0].PrevKV.Value, events[1].PrevKV.Value)
	}
	now, _, _ := listAll(t, s, "/cp/", storage.ListOptions{})
	if want := map[string]string{"/cp/a": "a3", "/cp/again": "2"}; !reflect.DeepEqual(now, want) {
		t.Fatalf("latest state after compaction: %v, want %v", now, want)
	}
	// Compacting everything leaves the latest state intact.
	if err := s.Compact(ctx, after); err != nil {
		t.Fatal(err)
	}
	now, _, _ = listAll(t, s, "/cp/", storage.ListOptions{})
	if want := map[string]string{"/cp/a": "a3", "/cp/again": "2"}; !reflect.DeepEqual(now, want) {
		t.Fatalf("latest state after full compaction: %v, want %v", now, want)
	}
}
