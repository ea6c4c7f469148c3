package bolt

import (
	"bytes"
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/tinykube/tinykube/storage"
)

// readTx is a read transaction with the store's counters loaded.
type readTx struct {
	index, log *bbolt.Bucket
	revision   int64
	compacted  int64
}

func newReadTx(tx *bbolt.Tx) readTx {
	meta := tx.Bucket(metaBucket)
	return readTx{
		index:     tx.Bucket(indexBucket),
		log:       tx.Bucket(logBucket),
		revision:  decodeInt64(meta.Get(metaRevision)),
		compacted: decodeInt64(meta.Get(metaCompacted)),
	}
}

// checkRevision says whether rev may be read in this transaction.
func (r readTx) checkRevision(rev int64) error {
	if rev < r.compacted {
		return fmt.Errorf("%w: revision %d, oldest retained %d", storage.ErrCompacted, rev, r.compacted)
	}
	if rev > r.revision {
		return fmt.Errorf("%w: revision %d, current %d", storage.ErrFutureRevision, rev, r.revision)
	}
	return nil
}

func (r readTx) record(rev int64) (record, bool, error) {
	b := r.log.Get(revisionKey(rev))
	if b == nil {
		return record{}, false, nil
	}
	rec, err := decodeRecord(b)
	if err != nil {
		return record{}, false, fmt.Errorf("%w at revision %d", err, rev)
	}
	return rec, true, nil
}

// resolve returns key as it stood at rev, given its index entry. The
// returned value aliases the transaction's memory.
func (r readTx) resolve(key string, e indexEntry, rev int64) (storage.KeyValue, bool, error) {
	if e.modRevision <= rev {
		if e.deleted {
			return storage.KeyValue{}, false, nil
		}
		rec, ok, err := r.record(e.modRevision)
		if err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("bolt: index of %q points at missing revision %d", key, e.modRevision)
			}
			return storage.KeyValue{}, false, err
		}
		return storage.KeyValue{Key: key, Value: rec.value, CreateRevision: e.createRevision, ModRevision: e.modRevision}, true, nil
	}
	// The key changed after rev: walk its history back. Compaction keeps,
	// for every key, the newest record at or below the compaction point, so
	// a missing record here means the key did not exist at rev.
	at := e.modRevision
	for at > 0 {
		rec, ok, err := r.record(at)
		if err != nil || !ok {
			return storage.KeyValue{}, false, err
		}
		if at <= rev {
			if rec.typ == recordDelete {
				return storage.KeyValue{}, false, nil
			}
			return storage.KeyValue{Key: key, Value: rec.value, CreateRevision: rec.createRevision, ModRevision: at}, true, nil
		}
		at = rec.prevRevision
	}
	return storage.KeyValue{}, false, nil
}

func cloneKV(kv storage.KeyValue) storage.KeyValue {
	kv.Value = bytes.Clone(kv.Value)
	return kv
}

// Get returns key at rev, or at the latest revision when rev is 0.
func (s *Store) Get(ctx context.Context, key string, rev int64) (storage.KeyValue, error) {
	if key == "" {
		return storage.KeyValue{}, storage.ErrInvalidKey
	}
	var kv storage.KeyValue
	err := s.view(func(tx *bbolt.Tx) error {
		r := newReadTx(tx)
		at := rev
		if at == 0 {
			at = r.revision
		} else if err := r.checkRevision(at); err != nil {
			return err
		}
		raw := r.index.Get([]byte(key))
		if raw == nil {
			return storage.ErrNotFound
		}
		e, err := decodeIndexEntry(raw)
		if err != nil {
			return err
		}
		found, ok, err := r.resolve(key, e, at)
		if err != nil {
			return err
		}
		if !ok {
			return storage.ErrNotFound
		}
		kv = cloneKV(found)
		return nil
	})
	return kv, err
}

// List returns the keys under prefix at one revision, a page at a time.
func (s *Store) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.ListResult, error) {
	if opts.Limit < 0 {
		return storage.ListResult{}, fmt.Errorf("storage: negative limit %d", opts.Limit)
	}
	start := prefix
	rev := opts.Revision
	if opts.Continue != "" {
		var err error
		if rev, start, err = storage.DecodeContinue(opts.Continue, prefix); err != nil {
			return storage.ListResult{}, err
		}
	}
	var res storage.ListResult
	err := s.view(func(tx *bbolt.Tx) error {
		r := newReadTx(tx)
		if rev == 0 {
			rev = r.revision
		} else if err := r.checkRevision(rev); err != nil {
			return err
		}
		res = storage.ListResult{Revision: rev}
		c := r.index.Cursor()
		p := []byte(prefix)
		var lastKey []byte
		for k, v := c.Seek([]byte(start)); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			e, err := decodeIndexEntry(v)
			if err != nil {
				return err
			}
			if opts.Limit > 0 && int64(len(res.KVs)) == opts.Limit {
				// The page is full: count what is left, without copying.
				if visible, err := r.visible(e, rev); err != nil {
					return err
				} else if visible {
					res.RemainingItemCount++
				}
				continue
			}
			kv, ok, err := r.resolve(string(k), e, rev)
			if err != nil {
				return err
			}
			if ok {
				res.KVs = append(res.KVs, cloneKV(kv))
				lastKey = k
			}
		}
		if res.RemainingItemCount > 0 {
			res.Continue = storage.EncodeContinue(rev, string(lastKey)+"\x00")
		}
		return nil
	})
	return res, err
}

// visible says whether a key exists at rev, without reading its value in
// the common case.
func (r readTx) visible(e indexEntry, rev int64) (bool, error) {
	if e.modRevision <= rev {
		return !e.deleted, nil
	}
	_, ok, err := r.resolve("", e, rev)
	return ok, err
}
