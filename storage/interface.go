package storage

import (
	"context"
)

// MaxValueSize is the largest value a store accepts, as etcd's default
// request limit: Kubernetes objects never legitimately come near it.
const MaxValueSize = 1536 * 1024

// KeyValue is one key as it stood at one revision.
type KeyValue struct {
	Key   string
	Value []byte
	// CreateRevision is the revision at which this incarnation of the key
	// was created. A key deleted and created again gets a new one.
	CreateRevision int64
	// ModRevision is the revision of the last write to the key; the API
	// server hands it out as metadata.resourceVersion.
	ModRevision int64
}

// EventType says what a write did to a key.
type EventType int

const (
	// Added: the key did not exist before this revision.
	Added EventType = iota + 1
	// Modified: the key existed and its value was replaced.
	Modified
	// Deleted: the key was removed; the event's KV carries the key, the
	// deletion revision as ModRevision and no value.
	Deleted
	// Progress is no write: it comes only after Watcher.RequestProgress,
	// and says that every event of the watch up to KV.ModRevision has been
	// delivered. KV has no key and no value. The API server uses it for
	// bookmarks on quiet watches.
	Progress
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "ADDED"
	case Modified:
		return "MODIFIED"
	case Deleted:
		return "DELETED"
	case Progress:
		return "PROGRESS"
	}
	return "UNKNOWN"
}

// Event is one committed write as a watcher sees it.
type Event struct {
	Type EventType
	// KV is the key after the write. For Deleted it has no Value.
	KV KeyValue
	// PrevKV is the key before the write; nil for Added.
	PrevKV *KeyValue
}

// Revision is the revision at which the write was committed.
func (e Event) Revision() int64 { return e.KV.ModRevision }

// ListOptions narrows a List.
type ListOptions struct {
	// Revision reads the list as of that revision; 0 reads the latest.
	// Ignored when Continue is set: a continued list is read at the
	// revision of its first page.
	Revision int64
	// Limit caps the number of keys returned; 0 means no limit.
	Limit int64
	// Continue is the token a previous page returned.
	Continue string
}

// ListResult is one page of a List.
type ListResult struct {
	KVs []KeyValue
	// Revision is the revision the page was read at: the store's revision
	// when the list started, or the one asked for.
	Revision int64
	// Continue is set when more keys follow; pass it back to read the next
	// page at the same Revision.
	Continue string
	// RemainingItemCount is the number of keys after this page at Revision,
	// when Continue is set.
	RemainingItemCount int64
}

// Interface is a versioned key-value store with the semantics Kubernetes
// expects of etcd. There is one global revision that grows by exactly one
// with every committed write (create, update or delete); reads and watches
// are expressed in it. Implementations are safe for concurrent use. A write
// that returns without error is durable.
//
// Values are shared, not copied: a caller must not modify a value slice it
// passed to Create or Update, nor one it received, because watchers may be
// reading the same bytes.
//
// Errors are the sentinels of this package, to be tested with errors.Is:
// ErrNotFound, ErrAlreadyExists, ErrConflict, ErrCompacted,
// ErrFutureRevision, ErrValueTooLarge, ErrInvalidContinue, ErrClosed.
type Interface interface {
	// Get returns key at revision rev, or at the latest revision when rev is
	// 0. ErrNotFound when the key does not exist at that revision,
	// ErrCompacted when rev is older than the oldest retained revision,
	// ErrFutureRevision when rev is newer than the store.
	Get(ctx context.Context, key string, rev int64) (KeyValue, error)

	// List returns the keys that start with prefix, in key order, as of one
	// revision (see ListOptions). Every page of a paginated list is read at
	// the revision of the first page, whatever writes happen in between.
	// ErrCompacted when that revision is no longer retained.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)

	// Create stores key with value if the key does not exist, and returns
	// it as stored. ErrAlreadyExists otherwise.
	Create(ctx context.Context, key string, value []byte) (KeyValue, error)

	// Update replaces the value of key only if its ModRevision is still
	// expectedModRevision (compare-and-swap) and returns the key as stored.
	// ErrNotFound when the key does not exist, ErrConflict when it was
	// changed since. Use GuaranteedUpdate for read-modify-write.
	Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (KeyValue, error)

	// Delete removes key and returns its last value. When
	// expectedModRevision is not 0 the delete happens only if the key's
	// ModRevision is still that (ErrConflict otherwise). ErrNotFound when
	// the key does not exist. The returned KeyValue's ModRevision is the
	// revision of the deletion.
	Delete(ctx context.Context, key string, expectedModRevision int64) (KeyValue, error)

	// Watch streams, in revision order and exactly once, every event on
	// keys starting with prefix committed after fromRevision; fromRevision
	// 0 means from now. ErrCompacted when fromRevision is older than the
	// oldest retained revision, ErrFutureRevision when it is newer than the
	// store. The watch ends when ctx ends, when the store closes, or with
	// an error (for example ErrWatcherTooSlow when the reader falls too far
	// behind); the caller must then list again.
	Watch(ctx context.Context, prefix string, fromRevision int64) (Watcher, error)

	// Revision returns the latest committed revision.
	Revision(ctx context.Context) (int64, error)

	// CompactedRevision returns the oldest revision that reads and watches
	// may still ask for (0 before any compaction).
	CompactedRevision() int64

	// Compact discards history older than rev: afterwards reads at
	// revisions below rev and watches from below rev get ErrCompacted. The
	// state as of rev and everything after stays. Compacting to a revision
	// at or below the current compaction point is a no-op.
	Compact(ctx context.Context, rev int64) error

	// Close releases the store. Pending watches end with ErrClosed.
	Close() error
}

// Watcher is a running watch.
type Watcher interface {
	// Events delivers the events in order. It is closed when the watch
	// ends; Err then says why.
	Events() <-chan Event
	// Err is nil while the watch runs and after a clean stop (context
	// ended or Stop called); otherwise it says why the watch ended.
	Err() error
	// Stop ends the watch and releases its resources. It may be called more
	// than once and from any goroutine.
	Stop()
	// RequestProgress asks for a Progress event carrying the store's
	// current revision, delivered after every event before it. It does not
	// block; requests made while one is pending may be merged.
	RequestProgress()
}
