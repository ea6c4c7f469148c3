package apiserver

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// eventCacheSize and eventCacheBytes bound the recently decoded watch
// objects that are kept: by count, and by the bytes of their stored values
// and encoded frames. Every watch of a resource reads the same event within
// moments of the others, so a small cache is enough for each event to be
// decoded and encoded once. Entries still in use (by an initial-state
// snapshot or a watch's queue) outlive their eviction.
const (
	eventCacheSize  = 4096
	eventCacheBytes = 64 << 20
)

// eventCache holds the objects of recent storage events, decoded once and
// shared by every watch stream that sends them. Its objects are read-only:
// watches filter and encode them but never change them.
type eventCache struct {
	mu      sync.Mutex
	entries map[eventCacheKey]*sharedObject
	// order holds the keys in insertion order; the oldest go first.
	order []eventCacheKey
	bytes int
}

// eventCacheKey names one object state: the resource (events.k8s.io and
// core Events share storage keys but not types), the storage key and the
// revision. deleted marks the last state of a deleted key, whose
// resourceVersion is the deletion's revision.
type eventCacheKey struct {
	res     *registry.Resource
	key     string
	rev     int64
	deleted bool
}

// sharedObject is one decoded object with its encoded watch events (frames),
// each computed on first use.
type sharedObject struct {
	cache *eventCache
	key   eventCacheKey

	decodeOnce sync.Once
	obj        runtime.Object
	err        error
	// size is what the cache charges for the entry.
	size int

	mu     sync.Mutex
	frames map[frameKey][]byte
}

// watchEncoding is how a watch stream encodes objects that are sent as they
// are (Table output is made per stream).
type watchEncoding int

const (
	encodingJSON watchEncoding = iota
	encodingProtobuf
	// encodingPartialJSON is PartialObjectMetadata, always JSON here.
	encodingPartialJSON
)

type frameKey struct {
	typ      watch.EventType
	encoding watchEncoding
}

func newEventCache() *eventCache {
	return &eventCache{entries: make(map[eventCacheKey]*sharedObject, eventCacheSize)}
}

// entry returns the shared entry for k, adding an empty one if needed.
func (c *eventCache) entry(k eventCacheKey) *sharedObject {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		return e
	}
	e := &sharedObject{cache: c, key: k}
	c.entries[k] = e
	c.order = append(c.order, k)
	c.evict()
	return e
}

// charge adds n bytes to e's size, if e is still cached.
func (c *eventCache) charge(e *sharedObject, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[e.key] != e {
		return
	}
	e.size += n
	c.bytes += n
	c.evict()
}

// evict drops the oldest entries while the cache is over a bound.
func (c *eventCache) evict() {
	for len(c.order) > 0 && (len(c.entries) > eventCacheSize || c.bytes > eventCacheBytes) {
		k := c.order[0]
		c.order = c.order[1:]
		if e, ok := c.entries[k]; ok {
			c.bytes -= e.size
			delete(c.entries, k)
		}
	}
}

// sharedObject returns the object of kv, decoded once for all watches.
// With deletedAt set, it is the last state of a key deleted at that
// revision, carrying it as resourceVersion.
func (s *Server) sharedObject(res *registry.Resource, kv storage.KeyValue, deletedAt int64) (*sharedObject, error) {
	k := eventCacheKey{res: res, key: kv.Key, rev: kv.ModRevision}
	if deletedAt != 0 {
		k = eventCacheKey{res: res, key: kv.Key, rev: deletedAt, deleted: true}
	}
	e := s.eventCache.entry(k)
	e.decodeOnce.Do(func() {
		e.obj, e.err = s.fromKV(res, kv)
		if e.err == nil && deletedAt != 0 {
			setResourceVersion(e.obj, deletedAt)
		}
		// The decoded object takes about as much as its stored form.
		s.eventCache.charge(e, len(kv.Value))
	})
	return e, e.err
}

// frame returns the whole watch event for the object, encoded once for
// every stream that sends it with this type and encoding.
func (e *sharedObject) frame(s *Server, typ watch.EventType, enc watchEncoding) ([]byte, error) {
	k := frameKey{typ: typ, encoding: enc}
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.frames[k]; ok {
		return f, nil
	}
	var obj runtime.Object = e.obj
	if enc == encodingPartialJSON {
		obj = partialObject(e.obj)
	}
	f, err := s.encodeFrame(typ, obj, enc == encodingProtobuf)
	if err != nil {
		return nil, err
	}
	if e.frames == nil {
		e.frames = map[frameKey][]byte{}
	}
	e.frames[k] = f
	e.cache.charge(e, len(f))
	return f, nil
}

// encodeFrame encodes one WatchEvent: a JSON line, or upstream's protobuf
// frame, a metav1.WatchEvent prefixed by its length in 4 big-endian bytes,
// whose object is in the protobuf envelope.
func (s *Server) encodeFrame(typ watch.EventType, obj runtime.Object, protobuf bool) ([]byte, error) {
	if !protobuf {
		raw, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		// What json.Marshal makes of a WatchEvent, without compacting the
		// already compact object again.
		line := make([]byte, 0, len(raw)+len(typ)+24)
		line = append(line, `{"type":"`...)
		line = append(line, typ...)
		line = append(line, `","object":`...)
		line = append(line, raw...)
		return append(line, "}\n"...), nil
	}
	info, _ := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaProtobuf)
	var buf bytes.Buffer
	if err := info.Serializer.Encode(obj, &buf); err != nil {
		return nil, err
	}
	event := metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: buf.Bytes()}}
	frame := make([]byte, 4+event.Size())
	n, err := event.MarshalToSizedBuffer(frame[4:])
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(frame, uint32(n))
	return frame[:4+n], nil
}
