package apiserver

import (
	"bytes"
	"encoding/json"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// eventCacheSize is how many recently decoded watch objects are kept. Every
// watch of a resource reads the same event within moments of the others,
// so a small cache is enough for each event to be decoded once.
const eventCacheSize = 4096

// eventCache holds the objects of recent storage events, decoded once and
// shared by every watch stream that sends them. Its objects are read-only:
// watches filter and encode them but never change them.
type eventCache struct {
	mu      sync.Mutex
	entries map[eventCacheKey]*sharedObject
	// ring holds the keys in insertion order; the oldest is evicted.
	ring []eventCacheKey
	next int
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

// sharedObject is one decoded object with its encodings, computed on first
// use.
type sharedObject struct {
	decodeOnce sync.Once
	obj        runtime.Object
	err        error

	jsonOnce sync.Once
	json     []byte
	jsonErr  error
	pbOnce   sync.Once
	pb       []byte
	pbErr    error
}

func newEventCache() *eventCache {
	return &eventCache{entries: make(map[eventCacheKey]*sharedObject, eventCacheSize), ring: make([]eventCacheKey, eventCacheSize)}
}

// entry returns the shared entry for k, adding an empty one if needed.
func (c *eventCache) entry(k eventCacheKey) *sharedObject {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		return e
	}
	e := &sharedObject{}
	if old := c.ring[c.next]; old.key != "" {
		delete(c.entries, old)
	}
	c.ring[c.next] = k
	c.next = (c.next + 1) % len(c.ring)
	c.entries[k] = e
	return e
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
	})
	return e, e.err
}

// encoded returns the object as JSON or, with protobuf, in the protobuf
// envelope, encoding it once.
func (e *sharedObject) encoded(s *Server, protobuf bool) ([]byte, error) {
	if protobuf {
		e.pbOnce.Do(func() {
			info, _ := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaProtobuf)
			var buf bytes.Buffer
			e.pbErr = info.Serializer.Encode(e.obj, &buf)
			e.pb = buf.Bytes()
		})
		return e.pb, e.pbErr
	}
	e.jsonOnce.Do(func() {
		e.json, e.jsonErr = json.Marshal(e.obj)
	})
	return e.json, e.jsonErr
}
