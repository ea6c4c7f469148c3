package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"

	bbolt "go.etcd.io/bbolt"

	"github.com/tinykube/tinykube/storage"
)

type opKind int

const (
	opCreate opKind = iota
	opUpdate
	opDelete
)

// writeOp is one write waiting for the committer. The committer fills
// result, err and event, then closes done.
type writeOp struct {
	kind     opKind
	key      string
	value    []byte
	expected int64

	result storage.KeyValue
	event  *storage.Event
	err    error
	done   chan struct{}
}

// Create stores key if it does not exist yet.
func (s *Store) Create(ctx context.Context, key string, value []byte) (storage.KeyValue, error) {
	return s.write(ctx, &writeOp{kind: opCreate, key: key, value: value})
}

// Update replaces key's value if its ModRevision is still expectedModRevision.
func (s *Store) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (storage.KeyValue, error) {
	return s.write(ctx, &writeOp{kind: opUpdate, key: key, value: value, expected: expectedModRevision})
}

// Delete removes key, if its ModRevision is still expectedModRevision when
// that is not 0.
func (s *Store) Delete(ctx context.Context, key string, expectedModRevision int64) (storage.KeyValue, error) {
	return s.write(ctx, &writeOp{kind: opDelete, key: key, expected: expectedModRevision})
}

// write hands op to the committer and waits for it to be durable. Once
// queued, a write is not abandoned when ctx ends: the caller learns its
// outcome, as with etcd.
func (s *Store) write(ctx context.Context, op *writeOp) (storage.KeyValue, error) {
	if op.key == "" {
		return storage.KeyValue{}, storage.ErrInvalidKey
	}
	if len(op.value) > storage.MaxValueSize {
		return storage.KeyValue{}, fmt.Errorf("%w: %d bytes", storage.ErrValueTooLarge, len(op.value))
	}
	if err := ctx.Err(); err != nil {
		return storage.KeyValue{}, err
	}
	op.done = make(chan struct{})
	select {
	case s.writes <- op:
	case <-s.stop:
		return storage.KeyValue{}, storage.ErrClosed
	case <-ctx.Done():
		return storage.KeyValue{}, ctx.Err()
	}
	select {
	case <-op.done:
	case <-s.committerDone:
		// The committer has exited: it finished or failed every op it
		// took, so op is either done already or was never taken.
		select {
		case <-op.done:
		default:
			return storage.KeyValue{}, storage.ErrClosed
		}
	}
	return op.result, op.err
}

// commitLoop is the single writer. Whatever writes queued up while the
// previous transaction was being fsynced are committed together in the
// next one: one fsync serves them all (group commit). Being the only
// writer also makes revisions and the order of watch events one and the
// same.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	defer close(s.committerDone)
	batch := make([]*writeOp, 0, s.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case op := <-s.writes:
			batch = append(batch, op)
		case <-s.stop:
			s.failQueued()
			return
		}
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case op := <-s.writes:
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

func (s *Store) failQueued() {
	for {
		select {
		case op := <-s.writes:
			op.err = storage.ErrClosed
			close(op.done)
		default:
			return
		}
	}
}

func (s *Store) commit(batch []*writeOp) {
	var events []storage.Event
	err := s.db.Update(func(tx *bbolt.Tx) error {
		events = events[:0]
		meta := tx.Bucket(metaBucket)
		w := txWriter{index: tx.Bucket(indexBucket), log: tx.Bucket(logBucket), rev: decodeInt64(meta.Get(metaRevision))}
		for _, op := range batch {
			op.err, op.event = nil, nil
			ev, err := w.apply(op)
			if err != nil {
				return err
			}
			if ev != nil {
				op.event = ev
				events = append(events, *ev)
			}
		}
		return meta.Put(metaRevision, revisionKey(w.rev))
	})
	if errors.Is(err, syscall.ENOSPC) {
		err = fmt.Errorf("%w: %w", storage.ErrNoSpace, err)
	} else if err != nil {
		err = fmt.Errorf("storage: commit failed: %w", err)
	}
	if err != nil {
		for _, op := range batch {
			op.result, op.err = storage.KeyValue{}, err
		}
	} else {
		s.hub.publish(events)
	}
	for _, op := range batch {
		close(op.done)
	}
}

// txWriter applies writes inside one transaction, counting revisions.
type txWriter struct {
	index, log *bbolt.Bucket
	rev        int64
}

// apply performs op. A failed precondition is op's own error (op.err) and
// leaves the transaction untouched; a returned error aborts the batch.
func (w *txWriter) apply(op *writeOp) (*storage.Event, error) {
	key := []byte(op.key)
	var cur indexEntry
	exists := false
	if raw := w.index.Get(key); raw != nil {
		e, err := decodeIndexEntry(raw)
		if err != nil {
			return nil, err
		}
		cur, exists = e, !e.deleted
	}
	switch {
	case op.kind == opCreate && exists:
		op.err = storage.ErrAlreadyExists
		return nil, nil
	case op.kind != opCreate && !exists:
		op.err = storage.ErrNotFound
		return nil, nil
	case op.kind == opUpdate && cur.modRevision != op.expected,
		op.kind == opDelete && op.expected != 0 && cur.modRevision != op.expected:
		op.err = fmt.Errorf("%w: key %q is at revision %d, expected %d", storage.ErrConflict, op.key, cur.modRevision, op.expected)
		return nil, nil
	}

	var prev *storage.KeyValue
	if exists {
		raw := w.log.Get(revisionKey(cur.modRevision))
		if raw == nil {
			return nil, fmt.Errorf("bolt: index of %q points at missing revision %d", op.key, cur.modRevision)
		}
		rec, err := decodeRecord(raw)
		if err != nil {
			return nil, err
		}
		prev = &storage.KeyValue{Key: op.key, Value: bytes.Clone(rec.value), CreateRevision: cur.createRevision, ModRevision: cur.modRevision}
	}

	w.rev++
	rec := record{key: op.key, prevRevision: cur.modRevision}
	next := indexEntry{createRevision: cur.createRevision, modRevision: w.rev}
	ev := &storage.Event{PrevKV: prev}
	switch op.kind {
	case opCreate:
		rec.typ, ev.Type = recordCreate, storage.Added
		next.createRevision = w.rev
		ev.PrevKV = nil
	case opUpdate:
		rec.typ, ev.Type = recordUpdate, storage.Modified
	case opDelete:
		rec.typ, ev.Type = recordDelete, storage.Deleted
		next.deleted = true
	}
	rec.createRevision = next.createRevision
	if op.kind != opDelete {
		rec.value = op.value
	}
	if err := w.log.Put(revisionKey(w.rev), rec.encode()); err != nil {
		return nil, err
	}
	if err := w.index.Put(key, next.encode()); err != nil {
		return nil, err
	}
	ev.KV = storage.KeyValue{Key: op.key, CreateRevision: next.createRevision, ModRevision: w.rev}
	if op.kind == opDelete {
		op.result = *prev
		op.result.ModRevision = w.rev
	} else {
		// The caller keeps op.value; the event shares it read-only.
		ev.KV.Value = op.value
		op.result = ev.KV
	}
	return ev, nil
}
