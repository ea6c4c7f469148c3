package apiserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

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
// length-prefixed protobuf, see watchStream), flushed one by one.
//
// Where it starts: with resourceVersion unset or "0" it first sends an
// ADDED event for every current object; with sendInitialEvents=true
// (watch-list) it does the same and then a BOOKMARK annotated
// k8s.io/initial-events-end; with resourceVersion N it sends what happened
// after N, or a 410 ERROR event if N has been compacted away.
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

	var initial []storage.KeyValue
	startRev := rv
	switch {
	case sendInitial:
		initial, startRev, err = s.listAll(ctx, prefix)
		if err != nil {
			return fromStorage(err, t.res, "")
		}
		if rv > startRev {
			return errTooLargeResourceVersion(rv, startRev)
		}
	case rv == 0:
		if startRev, err = s.store.Revision(ctx); err != nil {
			return apierrors.NewInternalError(err)
		}
	}

	watcher, err := s.store.Watch(ctx, prefix, startRev)
	if errors.Is(err, storage.ErrFutureRevision) {
		current, _ := s.store.Revision(ctx)
		return errTooLargeResourceVersion(startRev, current)
	}
	stream := &watchStream{s: s, w: w, res: t.res, q: q, format: format, tableOpts: tableOpts}
	stream.start()
	if errors.Is(err, storage.ErrCompacted) {
		stream.writeError(apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", startRev, s.store.CompactedRevision())))
		return nil
	}
	if err != nil {
		stream.writeError(apierrors.NewInternalError(err))
		return nil
	}
	defer watcher.Stop()

	for _, kv := range initial {
		obj, err := s.fromKV(t.res, kv)
		if err != nil {
			continue
		}
		if s.matches(q, t.res, obj) {
			stream.write(watch.Added, obj)
		}
	}
	lastRev := startRev
	if watchList {
		stream.writeBookmark(lastRev, true)
	}
	stream.flush()

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var bookmarks <-chan time.Time
	bookmarkPending := false
	if q.opts.AllowWatchBookmarks {
		ticker := time.NewTicker(s.watchBookmarkInterval)
		defer ticker.Stop()
		bookmarks = ticker.C
	}
	for {
		select {
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
		case <-bookmarks:
			// The bookmark goes out when the store's progress event
			// arrives, so it carries the store's revision, not only the
			// last event of this (possibly quiet) watch.
			watcher.RequestProgress()
			bookmarkPending = true
		case ev, ok := <-watcher.Events():
			if !ok {
				if errors.Is(watcher.Err(), storage.ErrCompacted) {
					stream.writeError(apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", lastRev, s.store.CompactedRevision())))
				}
				return nil
			}
			if ev.Type == storage.Progress {
				lastRev = max(lastRev, ev.Revision())
				if bookmarkPending {
					bookmarkPending = false
					stream.writeBookmark(lastRev, false)
					stream.flush()
				}
				continue
			}
			lastRev = ev.Revision()
			if typ, obj := s.translateEvent(t.res, q, ev); obj != nil {
				stream.writeShared(typ, obj)
				stream.flush()
			}
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
// protobuf stream: each event a metav1.WatchEvent in protobuf, prefixed by
// its length as 4 big-endian bytes, whose object is the protobuf encoding
// of the object (magic prefix and runtime.Unknown envelope).
type watchStream struct {
	s         *Server
	w         http.ResponseWriter
	res       *registry.Resource
	q         listQuery
	format    responseFormat
	tableOpts metav1.TableOptions
	// protobuf is set by start when the stream is in protobuf.
	protobuf bool
	// sentColumns: a Table watch sends column definitions only once.
	sentColumns bool
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
	if ws.protobuf {
		contentType = mediaProtobufWatch
	}
	ws.w.Header().Set("Content-Type", contentType)
	ws.w.Header().Set("Cache-Control", "no-cache, private")
	ws.w.WriteHeader(http.StatusOK)
	ws.flush()
}

func (ws *watchStream) flush() {
	_ = http.NewResponseController(ws.w).Flush()
}

func (ws *watchStream) write(typ watch.EventType, obj runtime.Object) {
	switch ws.format.as {
	case "Table":
		table, err := ws.s.tableFor(ws.res, obj, !ws.sentColumns, ws.tableOpts.IncludeObject)
		if err != nil {
			return
		}
		ws.sentColumns = true
		obj = table
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		obj = partialObject(obj)
	}
	ws.writeRaw(typ, obj)
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
	if ws.format.as == "PartialObjectMetadata" || ws.format.as == "PartialObjectMetadataList" {
		ws.writeRaw(watch.Bookmark, partialObject(obj))
		return
	}
	ws.writeRaw(watch.Bookmark, obj)
}

// writeShared writes an event whose object is shared by all watches,
// reusing its encoding when the stream sends objects as they are.
func (ws *watchStream) writeShared(typ watch.EventType, obj *sharedObject) {
	if ws.format.as != "" {
		ws.write(typ, obj.obj)
		return
	}
	raw, err := obj.encoded(ws.s, ws.protobuf)
	if err != nil {
		return
	}
	ws.writeEncoded(typ, raw)
}

func (ws *watchStream) writeRaw(typ watch.EventType, obj runtime.Object) {
	var raw []byte
	var err error
	if ws.protobuf {
		info, _ := runtime.SerializerInfoForMediaType(ws.s.codecs.SupportedMediaTypes(), mediaProtobuf)
		var buf bytes.Buffer
		err = info.Serializer.Encode(obj, &buf)
		raw = buf.Bytes()
	} else {
		raw, err = json.Marshal(obj)
	}
	if err != nil {
		return
	}
	ws.writeEncoded(typ, raw)
}

// writeEncoded writes one WatchEvent around an encoded object: a JSON line,
// or a protobuf WatchEvent prefixed by its length.
func (ws *watchStream) writeEncoded(typ watch.EventType, raw []byte) {
	event := metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: raw}}
	if !ws.protobuf {
		line, _ := json.Marshal(event)
		_, _ = ws.w.Write(append(line, '\n'))
		return
	}
	frame := make([]byte, 4+event.Size())
	n, err := event.MarshalToSizedBuffer(frame[4:])
	if err != nil {
		return
	}
	binary.BigEndian.PutUint32(frame, uint32(n))
	_, _ = ws.w.Write(frame[:4+n])
}

// writeError sends an ERROR event carrying a Status and ends the stream.
func (ws *watchStream) writeError(err error) {
	status := statusFor(err)
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	ws.writeRaw(watch.Error, &status)
	ws.flush()
}
