package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// minWatchTimeout is upstream's --min-request-timeout: a watch without
// timeoutSeconds lasts between one and two of these.
const minWatchTimeout = 30 * time.Minute

// initialEventsEndAnnotation marks the bookmark that ends a watch-list's
// initial events.
const initialEventsEndAnnotation = "k8s.io/initial-events-end"

// serveWatch streams changes to a collection as WatchEvents (JSON lines or
// length-prefixed protobuf, see watchStream), flushed as they go.
//
// Where it starts: with resourceVersion unset or "0" it first sends an
// ADDED event for every current object; with sendInitialEvents=true
// (watch-list) it does the same and then a BOOKMARK annotated
// k8s.io/initial-events-end; with resourceVersion N it sends what happened
// after N, or a 410 ERROR event if N has been compacted away.
//
// Memory: the initial state is a snapshot shared by the watches that
// start at the same revision (watch_snapshot.go), every object is decoded
// and encoded once for all watches (watch_cache.go), and the events a
// client has not read yet wait in a bounded queue (watch_queue.go): one
// goroutine reads the store and queues, the handler's writes to the
// client. A client that falls too far behind is ended; everything stops
// when the request's context ends.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	q, err := s.parseListQuery(r, t.res, true)
	if err != nil {
		return err
	}
	format, err := negotiate(r)
	if err != nil {
		return err
	}
	tableOpts, err := tableOptions(r)
	if err != nil {
		return err
	}
	timeout := time.Duration(float64(minWatchTimeout) * (1 + rand.Float64()))
	if q.opts.TimeoutSeconds != nil && *q.opts.TimeoutSeconds > 0 {
		timeout = time.Duration(*q.opts.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	rv, _ := parseResourceVersion(q.opts.ResourceVersion)
	watchList := q.opts.SendInitialEvents != nil && *q.opts.SendInitialEvents
	sendInitial := watchList || (q.opts.SendInitialEvents == nil && rv == 0)
	prefix := storagePrefix(t.res, t.namespace)

	startRev := rv
	if rv == 0 || sendInitial {
		if startRev, err = s.store.Revision(ctx); err != nil {
			return apierrors.NewInternalError(err)
		}
	}
	var snap *snapshot
	// finishInit ends the sending of the initial state: it gives back the
	// snapshot and the turn.
	finishInit := func() {}
	defer func() { finishInit() }()
	if sendInitial {
		// The system's own components do not wait for a turn.
		user, ok := authn.UserFrom(r.Context())
		takeTurn := !ok || !isSystem(user)
		if takeTurn {
			select {
			case s.watchInit <- struct{}{}:
			case <-ctx.Done():
				return nil
			case <-s.watchesDone:
				return apierrors.NewServiceUnavailable("the server is shutting down")
			}
		}
		finishInit = sync.OnceFunc(func() {
			if snap != nil {
				s.releaseSnapshot(snap)
			}
			if takeTurn {
				<-s.watchInit
			}
		})
		// "0" asks for any state, "" for the latest.
		anyRev := q.opts.ResourceVersion == "0"
		if snap, err = s.acquireSnapshot(ctx, t.res, prefix, startRev, anyRev); err != nil {
			return fromStorage(err, t.res, "")
		}
		startRev = snap.key.rev
		if rv > startRev {
			return errTooLargeResourceVersion(rv, startRev)
		}
	}

	watcher, err := s.store.Watch(ctx, prefix, startRev)
	if errors.Is(err, storage.ErrFutureRevision) {
		current, _ := s.store.Revision(ctx)
		return errTooLargeResourceVersion(startRev, current)
	}
	stream := newWatchStream(s, w, t.res, format, tableOpts)
	stream.start()
	if errors.Is(err, storage.ErrCompacted) {
		stream.writeError(apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", startRev, s.store.CompactedRevision())))
		return nil
	}
	if err != nil {
		stream.writeError(apierrors.NewInternalError(err))
		return nil
	}

	queue := newWatchQueue(startRev, s.watchQueueEvents, s.watchQueueBytes, func() {
		_ = stream.rc.SetWriteDeadline(time.Now().Add(s.watchSlowGrace))
	})
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		s.pumpWatch(ctx, t.res, q, watcher, queue)
	}()
	defer func() {
		cancel()
		watcher.Stop()
		<-pumpDone
	}()

	if snap != nil {
		for _, obj := range snap.objs {
			if !s.matches(q, t.res, obj.obj) {
				continue
			}
			if !queue.unlessOverflowed(func() { _ = stream.rc.SetWriteDeadline(time.Now().Add(watchInitWriteTimeout)) }) {
				break
			}
			stream.send(watch.Added, obj)
			if stream.err != nil || ctx.Err() != nil {
				return nil
			}
		}
		queue.unlessOverflowed(func() { _ = stream.rc.SetWriteDeadline(time.Time{}) })
		finishInit()
	}
	lastRev := startRev
	if watchList {
		stream.writeBookmark(lastRev, true)
	}
	stream.flush()

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		items, rev, closed, tooSlow := queue.take()
		for _, it := range items {
			switch {
			case it.err != nil:
				stream.writeError(it.err)
			case it.typ == watch.Bookmark:
				stream.writeBookmark(it.bookmarkRev, false)
			default:
				stream.send(it.typ, it.obj)
			}
		}
		if len(items) > 0 {
			stream.flush()
		}
		if stream.err != nil {
			return nil
		}
		lastRev = rev
		if tooSlow {
			// The overflow gave the client a grace period to finish its
			// current write; it did, so the watch ends cleanly.
			_ = stream.rc.SetWriteDeadline(time.Time{})
			s.log.Debug("watch ended: the client does not keep up", "uri", r.RequestURI)
			return nil
		}
		if closed {
			return nil
		}
		select {
		case <-queue.notify:
		case <-ctx.Done():
			return nil
		case <-s.watchesDone:
			return nil
		case <-deadline.C:
			if q.opts.AllowWatchBookmarks {
				stream.writeBookmark(lastRev, false)
				stream.flush()
			}
			return nil
		}
	}
}

// pumpWatch reads the store's events for one watch, translates them and
// queues them, until the watch ends or the queue overflows.
func (s *Server) pumpWatch(ctx context.Context, res *registry.Resource, q listQuery, watcher storage.Watcher, queue *watchQueue) {
	defer queue.close()
	var bookmarks <-chan time.Time
	bookmarkPending := false
	if q.opts.AllowWatchBookmarks {
		ticker := time.NewTicker(s.watchBookmarkInterval)
		defer ticker.Stop()
		bookmarks = ticker.C
	}
	lastRev := queue.rev
	for {
		var it watchItem
		select {
		case <-ctx.Done():
			return
		case <-s.watchesDone:
			return
		case <-bookmarks:
			// The bookmark goes out when the store's progress event
			// arrives, so it carries the store's revision, not only the
			// last event of this (possibly quiet) watch.
			watcher.RequestProgress()
			bookmarkPending = true
			continue
		case ev, ok := <-watcher.Events():
			if !ok {
				if errors.Is(watcher.Err(), storage.ErrCompacted) {
					queue.push(watchItem{err: apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", lastRev, s.store.CompactedRevision()))}, 0)
				}
				return
			}
			lastRev = max(lastRev, ev.Revision())
			if ev.Type == storage.Progress {
				if !bookmarkPending {
					queue.advance(lastRev)
					continue
				}
				bookmarkPending = false
				it = watchItem{typ: watch.Bookmark, bookmarkRev: lastRev}
			} else {
				typ, obj := s.translateEvent(res, q, ev)
				if obj == nil {
					queue.advance(lastRev)
					continue
				}
				it = watchItem{typ: typ, obj: obj, size: len(ev.KV.Value)}
				if ev.PrevKV != nil {
					it.size += len(ev.PrevKV.Value)
				}
			}
		}
		if !queue.push(it, lastRev) {
			return
		}
	}
}

// listAll reads every key under prefix at one revision.
func (s *Server) listAll(ctx context.Context, prefix string) ([]storage.KeyValue, int64, error) {
	var kvs []storage.KeyValue
	opts := storage.ListOptions{}
	for {
		page, err := s.store.List(ctx, prefix, opts)
		if err != nil {
			return nil, 0, err
		}
		kvs = append(kvs, page.KVs...)
		if page.Continue == "" {
			return kvs, page.Revision, nil
		}
		opts = storage.ListOptions{Continue: page.Continue}
	}
}

// translateEvent turns a storage event into the watch event a client with
// this query sees: objects moving into the selection are ADDED, out of it
// DELETED, as upstream's cacher does. A nil object means no event. Objects
// are decoded once for all watches (see eventCache) and must not be
// changed.
func (s *Server) translateEvent(res *registry.Resource, q listQuery, ev storage.Event) (watch.EventType, *sharedObject) {
	var cur, prev *sharedObject
	if ev.Type != storage.Deleted {
		obj, err := s.sharedObject(res, ev.KV, 0)
		if err != nil {
			return "", nil
		}
		cur = obj
	}
	if ev.PrevKV != nil {
		var deletedAt int64
		if ev.Type == storage.Deleted {
			deletedAt = ev.Revision()
		}
		obj, err := s.sharedObject(res, *ev.PrevKV, deletedAt)
		if err == nil {
			prev = obj
		}
	}
	switch ev.Type {
	case storage.Deleted:
		if prev == nil || !s.matches(q, res, prev.obj) {
			return "", nil
		}
		return watch.Deleted, prev
	case storage.Added:
		if !s.matches(q, res, cur.obj) {
			return "", nil
		}
		return watch.Added, cur
	default:
		curOK := s.matches(q, res, cur.obj)
		prevOK := prev != nil && s.matches(q, res, prev.obj)
		switch {
		case curOK && prevOK:
			return watch.Modified, cur
		case curOK:
			return watch.Added, cur
		case prevOK:
			return watch.Deleted, cur
		}
		return "", nil
	}
}

// watchStream writes WatchEvents in the negotiated form: newline-delimited
// JSON, or, when the client prefers protobuf and the kind has it, upstream's
// protobuf stream (see encodeFrame). Objects sent as they are, or as
// PartialObjectMetadata, go out in frames shared by every watch; Tables
// are made per stream.
type watchStream struct {
	s         *Server
	w         http.ResponseWriter
	rc        *http.ResponseController
	res       *registry.Resource
	format    responseFormat
	tableOpts metav1.TableOptions
	// protobuf is set by start when the stream is in protobuf.
	protobuf bool
	encoding watchEncoding
	// sentColumns: a Table watch sends column definitions only once.
	sentColumns bool
	// err is the first failed write (the client went away or was too
	// slow); nothing more is written after it.
	err error
}

func newWatchStream(s *Server, w http.ResponseWriter, res *registry.Resource, format responseFormat, tableOpts metav1.TableOptions) *watchStream {
	return &watchStream{s: s, w: w, rc: http.NewResponseController(w), res: res, format: format, tableOpts: tableOpts}
}

// mediaProtobufWatch is the Content-Type of a protobuf watch stream.
const mediaProtobufWatch = mediaProtobuf + ";stream=watch"

func (ws *watchStream) start() {
	contentType := mediaJSON
	if ws.format.mediaType == mediaProtobuf && ws.format.as == "" {
		if obj, err := ws.s.newObject(ws.res); err == nil {
			_, ws.protobuf = obj.(protobufMarshaler)
		}
	}
	switch {
	case ws.protobuf:
		contentType = mediaProtobufWatch
		ws.encoding = encodingProtobuf
	case isPartialMetadata(ws.format.as):
		ws.encoding = encodingPartialJSON
	}
	ws.w.Header().Set("Content-Type", contentType)
	ws.w.Header().Set("Cache-Control", "no-cache, private")
	ws.w.WriteHeader(http.StatusOK)
	ws.flush()
}

func isPartialMetadata(as string) bool {
	return as == "PartialObjectMetadata" || as == "PartialObjectMetadataList"
}

func (ws *watchStream) flush() {
	if ws.err == nil {
		ws.err = ws.rc.Flush()
	}
}

func (ws *watchStream) writeFrame(frame []byte) {
	if ws.err == nil {
		_, ws.err = ws.w.Write(frame)
	}
}

// send writes an event whose object is shared by all watches.
func (ws *watchStream) send(typ watch.EventType, obj *sharedObject) {
	if ws.format.as == "Table" {
		table, err := ws.s.tableFor(ws.res, obj.obj, !ws.sentColumns, ws.tableOpts.IncludeObject)
		if err != nil {
			return
		}
		ws.sentColumns = true
		ws.writeObject(typ, table)
		return
	}
	frame, err := obj.frame(ws.s, typ, ws.encoding)
	if err != nil {
		return
	}
	ws.writeFrame(frame)
}

// writeObject encodes an event of this stream alone and writes it.
func (ws *watchStream) writeObject(typ watch.EventType, obj runtime.Object) {
	frame, err := ws.s.encodeFrame(typ, obj, ws.protobuf)
	if err != nil {
		return
	}
	ws.writeFrame(frame)
}

// writeBookmark sends a BOOKMARK: an object of the watched kind carrying
// only the resourceVersion up to which everything has been sent.
func (ws *watchStream) writeBookmark(rev int64, initialEventsEnd bool) {
	obj, err := ws.s.newObject(ws.res)
	if err != nil {
		return
	}
	m := accessor(obj)
	m.SetResourceVersion(formatRevision(rev))
	if initialEventsEnd {
		m.SetAnnotations(map[string]string{initialEventsEndAnnotation: "true"})
	}
	if isPartialMetadata(ws.format.as) {
		ws.writeObject(watch.Bookmark, partialObject(obj))
		return
	}
	ws.writeObject(watch.Bookmark, obj)
}

// writeError sends an ERROR event carrying a Status and ends the stream.
func (ws *watchStream) writeError(err error) {
	status := statusFor(err)
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	ws.writeObject(watch.Error, &status)
	ws.flush()
}
