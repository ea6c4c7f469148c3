package apiserver

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func TestEventCacheSharesEntriesAndEvictsTheOldest(t *testing.T) {
	c := newEventCache()
	first := c.entry(eventCacheKey{key: "/a", rev: 1})
	if c.entry(eventCacheKey{key: "/a", rev: 1}) != first {
		t.Fatal("the same key and revision got two entries")
	}
	if c.entry(eventCacheKey{key: "/a", rev: 1, deleted: true}) == first {
		t.Fatal("a deleted key's last state shares the entry of its live state")
	}
	for i := range eventCacheSize {
		c.entry(eventCacheKey{key: fmt.Sprint("/b", i), rev: 2})
	}
	if len(c.entries) != eventCacheSize {
		t.Fatalf("%d entries, want at most %d", len(c.entries), eventCacheSize)
	}
	if c.entry(eventCacheKey{key: "/a", rev: 1}) == first {
		t.Fatal("the oldest entry was not evicted")
	}
}

func TestEventCacheEvictsTheOldestBeyondItsBytes(t *testing.T) {
	c := newEventCache()
	big := c.entry(eventCacheKey{key: "/big", rev: 1})
	c.charge(big, eventCacheBytes/2)
	next := c.entry(eventCacheKey{key: "/next", rev: 2})
	c.charge(next, eventCacheBytes/2)
	if c.entry(eventCacheKey{key: "/big", rev: 1}) != big {
		t.Fatal("evicted while within its bytes")
	}
	c.charge(next, 1)
	if c.entry(eventCacheKey{key: "/big", rev: 1}) == big {
		t.Fatal("the oldest entry was kept beyond the cache's bytes")
	}
	if c.bytes > eventCacheBytes {
		t.Fatalf("%d bytes cached, want at most %d", c.bytes, eventCacheBytes)
	}
}

func TestWatchersShareDecodedObjectsButFilterEachOnTheirOwn(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	all, err := cms.Watch(ctx(t), metav1.ListOptions{ResourceVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Stop()
	blue, err := cms.Watch(ctx(t), metav1.ListOptions{ResourceVersion: "1", LabelSelector: "color=blue"})
	if err != nil {
		t.Fatal(err)
	}
	defer blue.Stop()
	for _, color := range []string{"red", "blue"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: color, Labels: map[string]string{"color": color}}}
		if _, err := cms.Create(ctx(t), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cms.Delete(ctx(t), "blue", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	next := func(w watch.Interface) (watch.EventType, string) {
		select {
		case ev := <-w.ResultChan():
			return ev.Type, ev.Object.(*corev1.ConfigMap).Name
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return "", ""
		}
	}
	for _, want := range []string{"ADDED red", "ADDED blue", "DELETED blue"} {
		if typ, name := next(all); fmt.Sprint(typ, " ", name) != want {
			t.Fatalf("unfiltered watch: got %s %s, want %s", typ, name, want)
		}
	}
	for _, want := range []string{"ADDED blue", "DELETED blue"} {
		if typ, name := next(blue); fmt.Sprint(typ, " ", name) != want {
			t.Fatalf("selector watch: got %s %s, want %s", typ, name, want)
		}
	}
}
