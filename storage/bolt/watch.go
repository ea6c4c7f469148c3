package bolt

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/tinykube/tinykube/storage"
)

// catchUpPage is how many log records one catch-up transaction reads; the
// transaction ends before the events are sent, so that a slow reader
// never holds the file open for writers.
const catchUpPage = 512

// hub fans committed events out to watchers. The committer publishes under
// mu in revision order; a watcher registers under mu, so the revision it
// catches up to from the log and the first live event it gets meet exactly.
type hub struct {
	mu       sync.Mutex
	rev      int64 // last published revision
	watchers map[*watcher]struct{}
	buffer   int
}

func newHub(rev int64, buffer int) *hub {
	return &hub{rev: rev, watchers: map[*watcher]struct{}{}, buffer: buffer}
}

// publish hands events to every watcher. It never blocks on a reader: a
// watcher whose queue is full is dropped with ErrWatcherTooSlow.
func (h *hub) publish(events []storage.Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if !w.push(events, h.buffer) {
			delete(h.watchers, w)
		}
	}
	h.rev = events[len(events)-1].Revision()
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

func (h *hub) closeAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		w.fail(err)
		delete(h.watchers, w)
	}
}

// watcher is one running watch: a catch-up from the log, then live events
// from its queue.
type watcher struct {
	store  *Store
	prefix string
	out    chan storage.Event
	stopCh chan struct{}
	once   sync.Once

	mu      sync.Mutex
	minRev  int64 // live events at or below this are already covered
	queue   []storage.Event
	failure error         // why the hub dropped it
	final   error         // what Err reports once out is closed
	notify  chan struct{} // capacity 1: "the queue changed"
}

var _ storage.Watcher = (*watcher)(nil)

// Watch streams events under prefix after fromRevision.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (storage.Watcher, error) {
	if fromRevision < 0 {
		return nil, fmt.Errorf("storage: negative revision %d", fromRevision)
	}
	if fromRevision > 0 {
		err := s.view(func(tx *bbolt.Tx) error {
			r := newReadTx(tx)
			return r.checkRevision(fromRevision)
		})
		if err != nil {
			return nil, err
		}
	} else if err := s.view(func(*bbolt.Tx) error { return nil }); err != nil {
		return nil, err
	}
	w := &watcher{
		store:  s,
		prefix: prefix,
		out:    make(chan storage.Event),
		stopCh: make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	s.hub.mu.Lock()
	published := s.hub.rev
	if fromRevision == 0 {
		fromRevision = published
	}
	w.minRev = fromRevision
	s.hub.watchers[w] = struct{}{}
	s.hub.mu.Unlock()

	go w.run(ctx, fromRevision, published)
	return w, nil
}

// push queues the events for this watcher; false means the watcher is
// dropped.
func (w *watcher) push(events []storage.Event, limit int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure != nil {
		return false
	}
	queued := false
	for _, ev := range events {
		if ev.Revision() <= w.minRev || !strings.HasPrefix(ev.KV.Key, w.prefix) {
			continue
		}
		if len(w.queue) >= limit {
			w.failure = storage.ErrWatcherTooSlow
			w.queue = nil
			w.signal()
			return false
		}
		w.queue = append(w.queue, ev)
		queued = true
	}
	if queued {
		w.signal()
	}
	return true
}

// RequestProgress queues a Progress event at the latest published
// revision: everything the watch must deliver up to there is queued before
// it (or was replayed from the log before the queue is read).
func (w *watcher) RequestProgress() {
	h := w.store.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, live := h.watchers[w]; !live {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure != nil {
		return
	}
	if n := len(w.queue); n > 0 && w.queue[n-1].Type == storage.Progress {
		w.queue[n-1].KV.ModRevision = max(h.rev, w.minRev)
		return
	}
	if len(w.queue) >= h.buffer {
		w.failure = storage.ErrWatcherTooSlow
		w.queue = nil
		delete(h.watchers, w)
		w.signal()
		return
	}
	w.queue = append(w.queue, storage.Event{Type: storage.Progress, KV: storage.KeyValue{ModRevision: max(h.rev, w.minRev)}})
	w.signal()
}

func (w *watcher) signal() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *watcher) fail(err error) {
	w.mu.Lock()
	if w.failure == nil {
		w.failure = err
		w.queue = nil
	}
	w.mu.Unlock()
	w.signal()
}

func (w *watcher) run(ctx context.Context, from, to int64) {
	err := w.serve(ctx, from, to)
	w.store.hub.remove(w)
	w.mu.Lock()
	w.final = err
	w.mu.Unlock()
	close(w.out)
}

// serve delivers events until the watch ends, and says why it ended (nil
// for a stop by the reader).
func (w *watcher) serve(ctx context.Context, from, to int64) error {
	for cursor := from; cursor < to; {
		page, next, err := w.store.readEvents(w.prefix, cursor, to)
		if err != nil {
			return err
		}
		for _, ev := range page {
			if !w.send(ctx, ev) {
				return nil
			}
		}
		cursor = next
	}
	for {
		w.mu.Lock()
		batch, failure := w.queue, w.failure
		w.queue = nil
		w.mu.Unlock()
		if failure != nil {
			return failure
		}
		for _, ev := range batch {
			if !w.send(ctx, ev) {
				return nil
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-w.notify:
		case <-w.stopCh:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func (w *watcher) send(ctx context.Context, ev storage.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-w.stopCh:
	case <-ctx.Done():
	}
	return false
}

func (w *watcher) Events() <-chan storage.Event { return w.out }

func (w *watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.final
}

func (w *watcher) Stop() {
	w.once.Do(func() { close(w.stopCh) })
}

// readEvents reads up to catchUpPage log records after cursor and at or
// below to, and returns the events under prefix among them with the
// revision read up to. ErrCompacted when compaction has passed cursor.
func (s *Store) readEvents(prefix string, cursor, to int64) ([]storage.Event, int64, error) {
	var events []storage.Event
	next := cursor
	err := s.view(func(tx *bbolt.Tx) error {
		r := newReadTx(tx)
		if cursor < r.compacted {
			return fmt.Errorf("%w: watch at revision %d, oldest retained %d", storage.ErrCompacted, cursor, r.compacted)
		}
		c := r.log.Cursor()
		n := 0
		for k, v := c.Seek(revisionKey(cursor + 1)); k != nil && n < catchUpPage; k, v = c.Next() {
			rev := parseRevisionKey(k)
			if rev > to {
				break
			}
			next, n = rev, n+1
			rec, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("%w at revision %d", err, rev)
			}
			if !strings.HasPrefix(rec.key, prefix) {
				continue
			}
			ev, err := r.event(rec, rev)
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		if n < catchUpPage {
			next = to
		}
		return nil
	})
	return events, next, err
}

// event rebuilds the watch event of the record written at rev.
func (r readTx) event(rec record, rev int64) (storage.Event, error) {
	ev := storage.Event{KV: storage.KeyValue{Key: rec.key, CreateRevision: rec.createRevision, ModRevision: rev}}
	switch rec.typ {
	case recordCreate:
		ev.Type = storage.Added
		ev.KV.Value = bytes.Clone(rec.value)
		return ev, nil
	case recordUpdate:
		ev.Type = storage.Modified
		ev.KV.Value = bytes.Clone(rec.value)
	case recordDelete:
		ev.Type = storage.Deleted
	}
	prev, ok, err := r.record(rec.prevRevision)
	if err != nil {
		return ev, err
	}
	if !ok {
		return ev, fmt.Errorf("bolt: revision %d of %q lost its previous value at %d", rev, rec.key, rec.prevRevision)
	}
	ev.PrevKV = &storage.KeyValue{Key: rec.key, Value: bytes.Clone(prev.value), CreateRevision: prev.createRevision, ModRevision: rec.prevRevision}
	return ev, nil
}
