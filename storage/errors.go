package storage

import "errors"

// Errors returned by every backend; callers test them with errors.Is. The
// API server turns them into metav1.Status once, at the HTTP edge.
var (
	ErrNotFound        = errors.New("storage: key not found")
	ErrAlreadyExists   = errors.New("storage: key already exists")
	ErrConflict        = errors.New("storage: key was modified since the expected revision")
	ErrCompacted       = errors.New("storage: required revision has been compacted")
	ErrFutureRevision  = errors.New("storage: required revision is a future revision")
	ErrValueTooLarge   = errors.New("storage: value is larger than the 1.5 MiB limit")
	ErrInvalidContinue = errors.New("storage: invalid continue token")
	ErrInvalidKey      = errors.New("storage: key must not be empty")
	ErrWatcherTooSlow  = errors.New("storage: watcher fell too far behind and was dropped")
	ErrClosed          = errors.New("storage: store is closed")
	// ErrNoSpace: the data dir's file system is full; nothing of the
	// failed write was stored, and reads go on.
	ErrNoSpace = errors.New("storage: no space left on the data dir's file system")
)
