package bolt

import (
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/tinykube/tinykube/storage"
)

// compactChunk is how many log records one compaction transaction visits,
// so that compaction never holds the writer back for long.
const compactChunk = 4096

// Compact discards history older than rev. See storage.Interface.
//
// For every record at or below rev it drops the record that one replaced
// (the newest record at or below rev is what reads at rev need), and drops
// deletion records outright, with their tombstone in the index when the
// key was not created again. A missing predecessor then reads as "did not
// exist", which is what it was at any revision still allowed.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	current, err := s.Revision(ctx)
	if err != nil {
		return err
	}
	if rev > current {
		return fmt.Errorf("%w: compact to %d, current %d", storage.ErrFutureRevision, rev, current)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		done := false
		err := s.db.Update(func(tx *bbolt.Tx) error {
			var err error
			done, err = compactStep(tx, rev)
			return err
		})
		if err != nil {
			return fmt.Errorf("storage: compaction: %w", err)
		}
		if done {
			return nil
		}
	}
}

// compactStep compacts up to compactChunk records toward rev and says
// whether rev has been reached.
func compactStep(tx *bbolt.Tx, rev int64) (bool, error) {
	meta := tx.Bucket(metaBucket)
	index, log := tx.Bucket(indexBucket), tx.Bucket(logBucket)
	compacted := decodeInt64(meta.Get(metaCompacted))
	if rev <= compacted {
		return true, nil
	}
	c := log.Cursor()
	end := rev
	visited := 0
	var drop [][]byte
	var dropIndex [][]byte
	for k, v := c.Seek(revisionKey(compacted + 1)); k != nil; k, v = c.Next() {
		at := parseRevisionKey(k)
		if at > rev {
			break
		}
		if visited == compactChunk {
			end = at - 1
			break
		}
		visited++
		rec, err := decodeRecord(v)
		if err != nil {
			return false, fmt.Errorf("%w at revision %d", err, at)
		}
		if rec.prevRevision > 0 {
			drop = append(drop, revisionKey(rec.prevRevision))
		}
		if rec.typ == recordDelete {
			drop = append(drop, revisionKey(at))
			if raw := index.Get([]byte(rec.key)); raw != nil {
				if e, err := decodeIndexEntry(raw); err == nil && e.deleted && e.modRevision == at {
					dropIndex = append(dropIndex, []byte(rec.key))
				}
			}
		}
	}
	// Deleting while a cursor walks a bucket skips entries in bbolt, so the
	// deletions wait until the walk is over.
	for _, k := range drop {
		if err := log.Delete(k); err != nil {
			return false, err
		}
	}
	for _, k := range dropIndex {
		if err := index.Delete(k); err != nil {
			return false, err
		}
	}
	if err := meta.Put(metaCompacted, revisionKey(end)); err != nil {
		return false, err
	}
	return end == rev, nil
}

// compactLoop keeps Options.Retention of history: every interval it notes
// the current revision and compacts to the newest noted revision that is
// older than the retention. After a restart history is kept for at least
// the retention again, since the notes live in memory.
func (s *Store) compactLoop() {
	defer s.wg.Done()
	type sample struct {
		at  time.Time
		rev int64
	}
	var samples []sample
	ticker := time.NewTicker(s.opts.CompactionInterval)
	defer ticker.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		}
		now := s.opts.Now()
		rev, err := s.Revision(ctx)
		if err != nil {
			continue
		}
		samples = append(samples, sample{at: now, rev: rev})
		target := int64(0)
		keep := 0
		for i, sm := range samples {
			if now.Sub(sm.at) >= s.opts.Retention {
				target, keep = sm.rev, i
			}
		}
		samples = samples[keep:]
		if target > s.CompactedRevision() {
			_ = s.Compact(ctx, target)
		}
	}
}
