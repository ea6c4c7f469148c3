package apiserver

import (
	"context"
	"sync"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// snapshotPage is how many keys one read of an initial-state snapshot
// takes from the store.
const snapshotPage = 500

// snapshots shares the initial state of watches (the synthetic ADDED
// events of resourceVersion ""/"0" and sendInitialEvents): the watches of
// a collection that start at the same revision read it from the store and
// decode it once, together, and each streams the same decoded objects and
// encoded frames. A snapshot lives while a watch is still sending it.
type snapshots struct {
	mu   sync.Mutex
	live map[snapshotKey]*snapshot
}

type snapshotKey struct {
	res    *registry.Resource
	prefix string
	rev    int64
}

// snapshot is a collection as of one revision, in key order.
type snapshot struct {
	key   snapshotKey
	ready chan struct{} // closed when objs and err are set
	objs  []*sharedObject
	err   error
	users int // guarded by snapshots.mu
}

func newSnapshots() *snapshots {
	return &snapshots{live: map[snapshotKey]*snapshot{}}
}

// acquire returns the snapshot of the collection under prefix at rev,
// reading it unless another watch is already doing so or has done so. With
// anyRev (resourceVersion "0": any state will do) the newest live snapshot
// of the collection is taken instead, if there is one. The caller must
// release it.
func (s *Server) acquireSnapshot(ctx context.Context, res *registry.Resource, prefix string, rev int64, anyRev bool) (*snapshot, error) {
	ss := s.snapshots
	ss.mu.Lock()
	k := snapshotKey{res: res, prefix: prefix, rev: rev}
	snap, ok := ss.live[k]
	if !ok && anyRev {
		for lk, l := range ss.live {
			if lk.res == res && lk.prefix == prefix && (snap == nil || lk.rev > snap.key.rev) {
				snap = l
			}
		}
		ok = snap != nil
	}
	if ok {
		snap.users++
		ss.mu.Unlock()
		select {
		case <-snap.ready:
		case <-ctx.Done():
			s.releaseSnapshot(snap)
			return nil, ctx.Err()
		}
		if snap.err != nil {
			s.releaseSnapshot(snap)
			return nil, snap.err
		}
		return snap, nil
	}
	snap = &snapshot{key: k, ready: make(chan struct{}), users: 1}
	ss.live[k] = snap
	ss.mu.Unlock()
	// Read without the caller's context: other watches may be waiting for
	// this snapshot after the caller has gone.
	snap.objs, snap.err = s.readSnapshot(context.WithoutCancel(ctx), res, prefix, rev)
	close(snap.ready)
	if snap.err != nil {
		s.releaseSnapshot(snap)
		return nil, snap.err
	}
	return snap, nil
}

// releaseSnapshot ends one watch's use of snap.
func (s *Server) releaseSnapshot(snap *snapshot) {
	ss := s.snapshots
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if snap.users--; snap.users == 0 && ss.live[snap.key] == snap {
		delete(ss.live, snap.key)
	}
}

// readSnapshot reads and decodes every object under prefix at rev, page by
// page; objects still in the event cache are not decoded again.
func (s *Server) readSnapshot(ctx context.Context, res *registry.Resource, prefix string, rev int64) ([]*sharedObject, error) {
	var objs []*sharedObject
	opts := storage.ListOptions{Revision: rev, Limit: snapshotPage}
	for {
		page, err := s.store.List(ctx, prefix, opts)
		if err != nil {
			return nil, err
		}
		for _, kv := range page.KVs {
			if obj, err := s.sharedObject(res, kv, 0); err == nil {
				objs = append(objs, obj)
			}
		}
		if page.Continue == "" {
			return objs, nil
		}
		opts = storage.ListOptions{Continue: page.Continue, Limit: snapshotPage}
	}
}
