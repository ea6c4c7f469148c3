package apiserver

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/watch"
)

// Bounds of one watch's queue of events not yet written to its client. A
// client that falls this far behind is too slow: its watch ends, as
// upstream's cacher ends a watcher whose channel stays full, and the
// client resumes from the last resourceVersion it got (or relists). The
// queued objects are shared with every other watch, so the bytes bound
// what one slow client keeps alive, not a copy it owns.
const (
	watchQueueEvents = 1000
	watchQueueBytes  = 64 << 20
	// watchSlowGrace is how long a client whose queue overflowed has to
	// take the event being written to it before its stream is cut.
	watchSlowGrace = 2 * time.Second
	// watchInitConcurrency is how many watches send their initial state
	// at once; the others wait their turn, as upstream's priority and
	// fairness counts a watch's initialization as a request in flight.
	// Each initial event must be taken by the client within
	// watchInitWriteTimeout, or the watch ends, so that clients that do
	// not read cannot hold the turns.
	watchInitConcurrency  = 16
	watchInitWriteTimeout = 10 * time.Second
)

// watchItem is one event waiting to be written: an object (shared by all
// watches) and its event type, or a bookmark, or an error.
type watchItem struct {
	typ watch.EventType
	obj *sharedObject
	// size is what the item counts against watchQueueBytes.
	size int
	// bookmarkRev is set for a bookmark.
	bookmarkRev int64
	err         error
}

// watchQueue hands events from the goroutine that reads the store to the
// one that writes the response. push never blocks: a full queue ends the
// watch instead of growing.
type watchQueue struct {
	maxEvents, maxBytes int

	mu    sync.Mutex
	items []watchItem
	bytes int
	// rev is the revision up to which every event is queued or was
	// filtered out.
	rev int64
	// closed: nothing more will be queued; tooSlow says the queue
	// overflowed (and was emptied).
	closed, tooSlow bool
	notify          chan struct{} // capacity 1: "the queue changed"
	// onOverflow runs, under mu, when the queue overflows: it gives the
	// writer, which may be blocked writing to the client, a deadline.
	onOverflow func()
}

func newWatchQueue(rev int64, maxEvents, maxBytes int, onOverflow func()) *watchQueue {
	return &watchQueue{maxEvents: maxEvents, maxBytes: maxBytes, rev: rev, notify: make(chan struct{}, 1), onOverflow: onOverflow}
}

// unlessOverflowed runs f, unless the queue has overflowed; f and
// onOverflow never run at the same time, so a writer may set its own write
// deadlines with f without undoing the overflow's.
func (q *watchQueue) unlessOverflowed(f func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.tooSlow {
		return false
	}
	f()
	return true
}

// push queues it; rev is the revision it brings the watch to (0 when it
// does not move it). false means the queue overflowed: the watch is over.
func (q *watchQueue) push(it watchItem, rev int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return !q.tooSlow
	}
	if len(q.items) >= q.maxEvents || (len(q.items) > 0 && q.bytes+it.size > q.maxBytes) {
		q.items, q.bytes = nil, 0
		q.closed, q.tooSlow = true, true
		q.onOverflow()
		q.signal()
		return false
	}
	q.items = append(q.items, it)
	q.bytes += it.size
	q.rev = max(q.rev, rev)
	q.signal()
	return true
}

// advance records that every event up to rev has been queued or filtered
// out.
func (q *watchQueue) advance(rev int64) {
	q.mu.Lock()
	q.rev = max(q.rev, rev)
	q.mu.Unlock()
}

// close says that nothing more will be queued.
func (q *watchQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// take returns what is queued and the revision it brings the watch to, and
// whether the queue is closed (and then whether it overflowed).
func (q *watchQueue) take() (items []watchItem, rev int64, closed, tooSlow bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items, q.items, q.bytes = q.items, nil, 0
	return items, q.rev, q.closed, q.tooSlow
}

func (q *watchQueue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}
