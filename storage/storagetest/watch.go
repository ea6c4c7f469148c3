package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tinykube/tinykube/storage"
)

func mustWatch(t testing.TB, s storage.Interface, prefix string, from int64) storage.Watcher {
	t.Helper()
	w, err := s.Watch(ctxFor(t), prefix, from)
	if err != nil {
		t.Fatalf("watch %s from %d: %v", prefix, from, err)
	}
	t.Cleanup(w.Stop)
	return w
}

// collect reads n events, failing if they do not come within a deadline.
func collect(t testing.TB, w storage.Watcher, n int) []storage.Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var got []storage.Event
	for len(got) < n {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended after %d of %d events: %v", len(got), n, w.Err())
			}
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("only %d of %d events arrived", len(got), n)
		}
	}
	return got
}

// expectNext checks that the next event is a write to key.
func expectNext(t testing.TB, w storage.Watcher, key string) {
	t.Helper()
	ev := collect(t, w, 1)[0]
	if ev.KV.Key != key {
		t.Fatalf("next event is for %s, want %s", ev.KV.Key, key)
	}
}

type write struct {
	key  string
	typ  storage.EventType
	rev  int64
	data string
}

func testWatchConcurrentWriters(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	start := mustRevision(t, s)
	watchers := []storage.Watcher{mustWatch(t, s, "/cw/", 0), mustWatch(t, s, "/cw/", start)}
	const writers, each = 8, 60
	// Readers run while the writers write, as an informer does.
	received := make([]chan []storage.Event, len(watchers))
	for i, w := range watchers {
		received[i] = make(chan []storage.Event, 1)
		go func() {
			var got []storage.Event
			for ev := range w.Events() {
				got = append(got, ev)
				if len(got) == writers*each+1 {
					break
				}
			}
			received[i] <- got
		}()
	}
	var mu sync.Mutex
	var writes []write
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("/cw/g%d/k%d", g, i%7)
				data := fmt.Sprintf("g%d-%d", g, i)
				var kv storage.KeyValue
				var err error
				typ := storage.Added
				if kv, err = s.Create(ctx, key, []byte(data)); errors.Is(err, storage.ErrAlreadyExists) {
					if i%3 == 0 {
						typ, data = storage.Deleted, ""
						kv, err = s.Delete(ctx, key, 0)
					} else {
						typ = storage.Modified
						kv, err = storage.GuaranteedUpdate(ctx, s, key, func(storage.KeyValue) ([]byte, error) { return []byte(data), nil })
					}
				}
				if err != nil {
					t.Errorf("write %s: %v", key, err)
					return
				}
				mu.Lock()
				writes = append(writes, write{key: key, typ: typ, rev: kv.ModRevision, data: data})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	byRev := map[int64]write{}
	for _, w := range writes {
		if _, dup := byRev[w.rev]; dup {
			t.Fatalf("two acknowledged writes share revision %d", w.rev)
		}
		byRev[w.rev] = w
	}
	// A marker write after all others: each watcher must see exactly the
	// acknowledged writes and then the marker, nothing twice, nothing left.
	marker := mustCreate(t, s, "/cw/marker", "x")
	for i, w := range watchers {
		var events []storage.Event
		select {
		case events = <-received[i]:
		case <-time.After(30 * time.Second):
			t.Fatalf("watcher %d: events did not arrive", i)
		}
		if len(events) != len(writes)+1 {
			t.Fatalf("watcher %d: %d events for %d writes and a marker; ended with %v", i, len(events), len(writes), w.Err())
		}
		if last := events[len(events)-1]; last.KV.Key != "/cw/marker" || last.Revision() != marker.ModRevision {
			t.Fatalf("watcher %d: last event %s at %d, want the marker", i, last.KV.Key, last.Revision())
		}
		for j, ev := range events[:len(writes)] {
			if want := start + int64(j) + 1; ev.Revision() != want {
				t.Fatalf("watcher %d: event %d has revision %d, want %d (order or exactly-once broken)", i, j, ev.Revision(), want)
			}
			wr := byRev[ev.Revision()]
			if ev.KV.Key != wr.key || ev.Type != wr.typ || string(ev.KV.Value) != wr.data {
				t.Fatalf("watcher %d: event at %d is %s %s %q, the write was %s %s %q", i, ev.Revision(), ev.Type, ev.KV.Key, ev.KV.Value, wr.typ, wr.key, wr.data)
			}
		}
	}
}

func testWatchEvents(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	w := mustWatch(t, s, "/w/", 0)
	a := mustCreate(t, s, "/w/a", "v1")
	mustCreate(t, s, "/other/a", "not watched")
	mustCreate(t, s, "/w", "not under the prefix")
	up, err := s.Update(ctx, "/w/a", []byte("v2"), a.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	del, err := s.Delete(ctx, "/w/a", 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := collect(t, w, 3)
	if ev[0].Type != storage.Added || string(ev[0].KV.Value) != "v1" || ev[0].PrevKV != nil || ev[0].KV.CreateRevision != a.CreateRevision {
		t.Fatalf("create event: %+v", ev[0])
	}
	if ev[1].Type != storage.Modified || string(ev[1].KV.Value) != "v2" || ev[1].PrevKV == nil ||
		string(ev[1].PrevKV.Value) != "v1" || ev[1].PrevKV.ModRevision != a.ModRevision || ev[1].Revision() != up.ModRevision {
		t.Fatalf("update event: %+v prev %+v", ev[1], ev[1].PrevKV)
	}
	if ev[2].Type != storage.Deleted || ev[2].KV.Value != nil || ev[2].PrevKV == nil ||
		string(ev[2].PrevKV.Value) != "v2" || ev[2].PrevKV.ModRevision != up.ModRevision || ev[2].Revision() != del.ModRevision {
		t.Fatalf("delete event: %+v prev %+v", ev[2], ev[2].PrevKV)
	}
}

func testWatchResume(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	start := mustRevision(t, s)
	for i := range 40 {
		key := fmt.Sprintf("/r/k%d", i%5)
		if _, err := s.Create(ctx, key, []byte(fmt.Sprint(i))); errors.Is(err, storage.ErrAlreadyExists) {
			if i%4 == 0 {
				_, err = s.Delete(ctx, key, 0)
			} else {
				_, err = storage.GuaranteedUpdate(ctx, s, key, func(storage.KeyValue) ([]byte, error) { return []byte(fmt.Sprint(i)), nil })
			}
			if err != nil {
				t.Fatal(err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	end := mustRevision(t, s)
	all := collect(t, mustWatch(t, s, "/r/", start), int(end-start))
	var markers []string
	for from := start; from <= end; from += 3 {
		w := mustWatch(t, s, "/r/", from)
		got := collect(t, w, int(end-from))
		for i, ev := range got {
			want := all[int(from-start)+i]
			if ev.Revision() != want.Revision() || ev.Type != want.Type || string(ev.KV.Value) != string(want.KV.Value) ||
				(ev.PrevKV == nil) != (want.PrevKV == nil) {
				t.Fatalf("resume from %d: event %d is %s at %d, want %s at %d", from, i, ev.Type, ev.Revision(), want.Type, want.Revision())
			}
		}
		// Then the markers of earlier rounds, then a live event, without
		// a gap between replay and live delivery.
		for _, m := range markers {
			expectNext(t, w, m)
		}
		marker := fmt.Sprintf("/r/live%d", from)
		mustCreate(t, s, marker, "x")
		markers = append(markers, marker)
		expectNext(t, w, marker)
		w.Stop()
	}
}

func testWatchFuture(t *testing.T, s storage.Interface, _ Backend) {
	rev := mustRevision(t, s)
	_, err := s.Watch(ctxFor(t), "/", rev+10)
	wantErr(t, "watch from a future revision", err, storage.ErrFutureRevision)
}

func testWatchStop(t *testing.T, s storage.Interface, _ Backend) {
	w := mustWatch(t, s, "/s/", 0)
	w.Stop()
	w.Stop()
	waitClosed(t, w)
	if w.Err() != nil {
		t.Fatalf("stopped watch reports %v", w.Err())
	}
	ctx, cancel := context.WithCancel(ctxFor(t))
	w2, err := s.Watch(ctx, "/s/", 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitClosed(t, w2)
	if w2.Err() != nil {
		t.Fatalf("watch whose context ended reports %v", w2.Err())
	}
}

// waitClosed drains w until its channel closes.
func waitClosed(t testing.TB, w storage.Watcher) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch did not end")
		}
	}
}

func testSlowWatcher(t *testing.T, s storage.Interface, b Backend) {
	if b.WatchBuffer <= 0 {
		t.Skip("backend does not bound its watch buffer")
	}
	ctx := ctxFor(t)
	slow := mustWatch(t, s, "/slow/", 0)
	fast := mustWatch(t, s, "/slow/", 0)
	total := 2*b.WatchBuffer + 10
	fastGot := make(chan int, 1)
	go func() {
		n := 0
		for range fast.Events() {
			if n++; n == total {
				break
			}
		}
		fastGot <- n
	}()
	const writers = 4
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < total; i += writers {
				if _, err := s.Create(ctx, fmt.Sprintf("/slow/%d", i), []byte("x")); err != nil {
					t.Errorf("write %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case n := <-fastGot:
		if n != total {
			t.Fatalf("fast watcher got %d of %d events", n, total)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the fast watcher was held back by the slow one")
	}
	waitClosed(t, slow)
	if !errors.Is(slow.Err(), storage.ErrWatcherTooSlow) {
		t.Fatalf("slow watcher ended with %v, want %v", slow.Err(), storage.ErrWatcherTooSlow)
	}
}

func testWatchProgress(t *testing.T, s storage.Interface, _ Backend) {
	start := mustRevision(t, s)
	mustCreate(t, s, "/p/a", "1")
	quiet := mustWatch(t, s, "/p/", 0)
	replaying := mustWatch(t, s, "/p/", start)
	for i := range 3 {
		mustCreate(t, s, fmt.Sprintf("/other/%d", i), "x")
	}
	now := mustRevision(t, s)
	quiet.RequestProgress()
	if ev := collect(t, quiet, 1)[0]; ev.Type != storage.Progress || ev.Revision() != now {
		t.Fatalf("quiet watch: got %s at %d, want PROGRESS at %d", ev.Type, ev.Revision(), now)
	}
	// A watch still replaying history reports progress only after it.
	replaying.RequestProgress()
	got := collect(t, replaying, 2)
	if got[0].Type != storage.Added || got[0].KV.Key != "/p/a" {
		t.Fatalf("replaying watch: first event %s %s, want the replayed ADDED /p/a", got[0].Type, got[0].KV.Key)
	}
	if got[1].Type != storage.Progress || got[1].Revision() != now {
		t.Fatalf("replaying watch: got %s at %d, want PROGRESS at %d", got[1].Type, got[1].Revision(), now)
	}
	b := mustCreate(t, s, "/p/b", "2")
	quiet.RequestProgress()
	got = collect(t, quiet, 2)
	if got[0].KV.Key != "/p/b" || got[1].Type != storage.Progress || got[1].Revision() < b.ModRevision {
		t.Fatalf("after a write: got %s %s then %s at %d", got[0].Type, got[0].KV.Key, got[1].Type, got[1].Revision())
	}
}
