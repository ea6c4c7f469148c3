package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tinykube/tinykube/storage"
)

var _ storage.Interface = (*Store)(nil)

// Options tune a Store. The zero value gives the defaults.
type Options struct {
	// Retention is how long history (old revisions, watch replay) is kept
	// before background compaction discards it. Default 5 minutes.
	Retention time.Duration
	// CompactionInterval is how often the background compactor runs.
	// Default: a fifth of Retention, at most one minute.
	CompactionInterval time.Duration
	// WatchBuffer is how many events one watcher may fall behind before its
	// watch ends with storage.ErrWatcherTooSlow. Default 8192.
	WatchBuffer int
	// MaxBatch caps how many writes share one transaction and fsync.
	// Default 1024.
	MaxBatch int
	// OpenTimeout is how long Open waits for another process to release
	// the file. Default 100ms: fail fast rather than hang at start.
	OpenTimeout time.Duration
	// Now is the clock; tests inject one. Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Retention <= 0 {
		o.Retention = 5 * time.Minute
	}
	if o.CompactionInterval <= 0 {
		o.CompactionInterval = min(o.Retention/5, time.Minute)
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = 8192
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1024
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = 100 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is the embedded storage.Interface on one bbolt file.
type Store struct {
	db   *bbolt.DB
	path string
	opts Options

	writes        chan *writeOp
	committerDone chan struct{} // closed when commitLoop returns
	hub           *hub

	stop      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // committer and compactor

	compactMu sync.Mutex // one compaction at a time
}

// Open opens or creates the store at path. It fails fast when another
// process holds the file, and reports a corrupt or truncated file instead of
// touching it.
func Open(path string, opts Options) (*Store, error) {
	opts.setDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: creating data directory: %w", err)
	}
	db, err := openFile(path, opts)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("storage: %s is locked by another process (is another tinykube server running on this data dir?)", path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, corruptError(path, err)
	case err != nil:
		return nil, fmt.Errorf("storage: opening %s: %w", path, err)
	}
	rev, err := checkAndInit(db, path)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{
		db:            db,
		path:          path,
		opts:          opts,
		writes:        make(chan *writeOp, opts.MaxBatch),
		committerDone: make(chan struct{}),
		hub:           newHub(rev, opts.WatchBuffer),
		stop:          make(chan struct{}),
	}
	s.wg.Add(2)
	go s.commitLoop()
	go s.compactLoop()
	return s, nil
}

// openFile opens the bbolt file. bbolt reads the freelist at open and
// panics, or faults on memory past the end of a truncated file, when pages
// are damaged; both become an error here.
func openFile(path string, opts Options) (db *bbolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, corruptError(path, fmt.Errorf("%v", p))
		}
	}()
	return bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      opts.OpenTimeout,
		FreelistType: bbolt.FreelistMapType,
	})
}

func corruptError(path string, err error) error {
	return fmt.Errorf("storage: %s is corrupt or truncated (%v); it was left untouched: restore it from a backup, or move it away to start an empty cluster", path, err)
}

// checkAndInit creates the buckets of a new file, or checks that an
// existing one is a complete tinykube store, and returns its revision.
// bbolt panics on some corrupt pages; that is reported as corruption too.
func checkAndInit(db *bbolt.DB, path string) (rev int64, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = corruptError(path, fmt.Errorf("%v", p))
		}
	}()
	info, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("storage: %w", err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if tx.Size() > info.Size() {
			return corruptError(path, fmt.Errorf("file is %d bytes, its pages need %d", info.Size(), tx.Size()))
		}
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			if tx.Bucket(indexBucket) != nil || tx.Bucket(logBucket) != nil {
				return corruptError(path, errors.New("meta bucket missing"))
			}
			return initBuckets(tx)
		}
		if v := decodeInt64(meta.Get(metaSchema)); v != schemaVersion {
			return fmt.Errorf("storage: %s has schema version %d, this tinykube reads %d", path, v, schemaVersion)
		}
		if tx.Bucket(indexBucket) == nil || tx.Bucket(logBucket) == nil {
			return corruptError(path, errors.New("index or log bucket missing"))
		}
		rev = decodeInt64(meta.Get(metaRevision))
		if rev < initialRevision {
			return corruptError(path, errors.New("revision counter missing"))
		}
		// The newest log record must not be ahead of the counter: both are
		// written in one transaction.
		if k, _ := tx.Bucket(logBucket).Cursor().Last(); k != nil && parseRevisionKey(k) > rev {
			return corruptError(path, fmt.Errorf("log reaches revision %d past the counter %d", parseRevisionKey(k), rev))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev = initialRevision
	}
	return rev, nil
}

func initBuckets(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucket(metaBucket)
	if err != nil {
		return err
	}
	if _, err := tx.CreateBucket(indexBucket); err != nil {
		return err
	}
	if _, err := tx.CreateBucket(logBucket); err != nil {
		return err
	}
	if err := meta.Put(metaSchema, revisionKey(schemaVersion)); err != nil {
		return err
	}
	if err := meta.Put(metaCompacted, revisionKey(0)); err != nil {
		return err
	}
	return meta.Put(metaRevision, revisionKey(initialRevision))
}

// Revision returns the latest committed revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.view(func(tx *bbolt.Tx) error {
		rev = decodeInt64(tx.Bucket(metaBucket).Get(metaRevision))
		return nil
	})
	return rev, err
}

// CompactedRevision returns the oldest revision reads may still ask for.
func (s *Store) CompactedRevision() int64 {
	var rev int64
	_ = s.view(func(tx *bbolt.Tx) error {
		rev = decodeInt64(tx.Bucket(metaBucket).Get(metaCompacted))
		return nil
	})
	return rev
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	select {
	case <-s.stop:
		return storage.ErrClosed
	default:
	}
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return storage.ErrClosed
	}
	return err
}

// Close stops the background work, ends every watch with
// storage.ErrClosed, fails writes not yet committed, and closes the file.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.hub.closeAll(storage.ErrClosed)
		err = s.db.Close()
	})
	return err
}
