package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

func TestSharedInformerSyncsAndSeesEveryChange(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(ts.client, 0)
	informer := factory.Core().V1().ConfigMaps().Informer()
	var mu sync.Mutex
	seen := map[string]string{}
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			mu.Lock()
			defer mu.Unlock()
			cm := obj.(*corev1.ConfigMap)
			seen[cm.Name] = "added"
		},
		UpdateFunc: func(_, obj any) {
			mu.Lock()
			defer mu.Unlock()
			cm := obj.(*corev1.ConfigMap)
			seen[cm.Name] = "updated:" + cm.Data["v"]
		},
		DeleteFunc: func(obj any) {
			mu.Lock()
			defer mu.Unlock()
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				seen[cm.Name] = "deleted"
			}
		},
	})
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	syncCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), informer.HasSynced) {
		t.Fatal("informer did not sync")
	}
	state := func(name string) string {
		mu.Lock()
		defer mu.Unlock()
		return seen[name]
	}
	if state("before") != "added" {
		t.Fatalf("synced informer has not seen the existing object: %v", seen)
	}
	cm, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "ADDED of a new object", func() bool { return state("after") == "added" })
	cm.Data = map[string]string{"v": "2"}
	if _, err := cms.Update(ctx(t), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "MODIFIED", func() bool { return state("after") == "updated:2" })
	if err := cms.Delete(ctx(t), "after", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "DELETED", func() bool { return state("after") == "deleted" })
}

// watchEvents opens a raw watch and returns a channel of decoded events.
func watchEvents(t *testing.T, ts *testServer, path string) <-chan metav1.WatchEvent {
	t.Helper()
	c, cancel := contextWithCancel(t)
	t.Cleanup(cancel)
	return watchEventsWithAccept(t, ts, c, path, "")
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// watchEventsWithAccept opens a raw watch with an Accept header.
func watchEventsWithAccept(t *testing.T, ts *testServer, c context.Context, path, accept string) <-chan metav1.WatchEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(c, "GET", ts.http.URL+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch %s: %d", path, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("watch Content-Type %q", ct)
	}
	events := make(chan metav1.WatchEvent, 100)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		scanner := bufio.NewScanner(resp.Body)
		scanner.Buffer(make([]byte, 1<<20), 1<<20)
		for scanner.Scan() {
			var ev metav1.WatchEvent
			if err := json.Unmarshal(scanner.Bytes(), &ev); err == nil {
				events <- ev
			}
		}
	}()
	return events
}

func nextEvent(t *testing.T, events <-chan metav1.WatchEvent) metav1.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("watch ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return metav1.WatchEvent{}
}

func eventName(t *testing.T, ev metav1.WatchEvent) (string, string) {
	var obj metav1.PartialObjectMetadata
	if err := json.Unmarshal(ev.Object.Raw, &obj); err != nil {
		t.Fatal(err)
	}
	return obj.Name, obj.ResourceVersion
}

func TestWatchFromZeroStartsWithSyntheticAdded(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "existing"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	events := watchEvents(t, ts, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0")
	ev := nextEvent(t, events)
	if name, _ := eventName(t, ev); ev.Type != string(watch.Added) || name != "existing" {
		t.Fatalf("first event %s %s", ev.Type, name)
	}
	if _, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "new"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, events)
	if name, _ := eventName(t, ev); ev.Type != string(watch.Added) || name != "new" {
		t.Fatalf("second event %s %s", ev.Type, name)
	}
}

func TestWatchFromResourceVersionSendsOnlyLaterChanges(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	first, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx(t), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	events := watchEvents(t, ts, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion="+first.ResourceVersion)
	ev := nextEvent(t, events)
	if name, _ := eventName(t, ev); ev.Type != "ADDED" || name != "b" {
		t.Fatalf("got %s %s, want ADDED b", ev.Type, name)
	}
	ev = nextEvent(t, events)
	name, rv := eventName(t, ev)
	if ev.Type != "DELETED" || name != "a" || rv == first.ResourceVersion {
		t.Fatalf("got %s %s rv %s, want DELETED a at the deletion revision", ev.Type, name, rv)
	}
}

func TestWatchWithLabelSelectorSeesObjectsLeavingAsDeleted(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: map[string]string{"team": "a"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	events := watchEvents(t, ts, "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=team%3Da&resourceVersion="+cm.ResourceVersion)
	cm.Labels["team"] = "b"
	if _, err := cms.Update(ctx(t), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events)
	if ev.Type != "DELETED" {
		t.Fatalf("object leaving the selector: got %s, want DELETED", ev.Type)
	}
}

func TestWatchFromCompactedRevisionGetsExpiredError(t *testing.T) {
	ts := newTestServer(t)
	cms := ts.client.CoreV1().ConfigMaps("default")
	var last string
	for i := range 3 {
		cm, err := cms.Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("c", i)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		last = cm.ResourceVersion
	}
	rev, _ := parseResourceVersion(last)
	if err := ts.store.Compact(ctx(t), rev); err != nil {
		t.Fatal(err)
	}
	events := watchEvents(t, ts, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2")
	ev := nextEvent(t, events)
	var st metav1.Status
	_ = json.Unmarshal(ev.Object.Raw, &st)
	if ev.Type != "ERROR" || st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
		t.Fatalf("got %s %+v, want ERROR 410 Expired", ev.Type, st)
	}
	// A list at a compacted exact revision is refused the same way.
	resp := ts.do("GET", "/api/v1/namespaces/default/configmaps?resourceVersion=2&resourceVersionMatch=Exact", "", "")
	if resp.code != 410 {
		t.Fatalf("exact list at compacted revision: %d %s", resp.code, resp.body)
	}
}

func TestWatchListSendsInitialEventsThenAnnotatedBookmark(t *testing.T) {
	ts := newTestServer(t)
	events := watchEvents(t, ts, "/api/v1/namespaces?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
	var added int
	for {
		ev := nextEvent(t, events)
		if ev.Type == "BOOKMARK" {
			var ns corev1.Namespace
			if err := json.Unmarshal(ev.Object.Raw, &ns); err != nil {
				t.Fatal(err)
			}
			if ns.Kind != "Namespace" || ns.Annotations[initialEventsEndAnnotation] != "true" || ns.ResourceVersion == "" {
				t.Fatalf("bookmark %s", ev.Object.Raw)
			}
			break
		}
		if ev.Type != "ADDED" {
			t.Fatalf("unexpected %s before the bookmark", ev.Type)
		}
		added++
	}
	if added != 4 {
		t.Fatalf("got %d initial namespaces, want the 4 system ones", added)
	}
}

func TestWatchWithoutBookmarksNeverSendsOne(t *testing.T) {
	ts := newTestServer(t)
	ts.api.watchBookmarkInterval = 20 * time.Millisecond
	events := watchEvents(t, ts, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1")
	for ev := range events {
		if ev.Type == "BOOKMARK" {
			t.Fatal("bookmark sent without allowWatchBookmarks")
		}
	}
	events = watchEvents(t, ts, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&allowWatchBookmarks=true&timeoutSeconds=5")
	if ev := nextEvent(t, events); ev.Type != "BOOKMARK" {
		t.Fatalf("got %s, want a periodic BOOKMARK", ev.Type)
	}
}

func TestBookmarkOnAQuietWatchCarriesTheStoreRevision(t *testing.T) {
	ts := newTestServer(t)
	ts.api.watchBookmarkInterval = 50 * time.Millisecond
	rev, err := ts.store.Revision(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	events := watchEvents(t, ts, fmt.Sprintf("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=%d&allowWatchBookmarks=true&timeoutSeconds=10", rev))
	var last *corev1.Secret
	for i := range 3 {
		s, err := ts.client.CoreV1().Secrets("default").Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("s", i)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		last = s
	}
	written, _ := parseResourceVersion(last.ResourceVersion)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("watch ended without a bookmark past the secret writes")
			}
			if ev.Type != "BOOKMARK" {
				t.Fatalf("got %s on a watch of an untouched resource", ev.Type)
			}
			var cm corev1.ConfigMap
			if err := json.Unmarshal(ev.Object.Raw, &cm); err != nil {
				t.Fatal(err)
			}
			if got, _ := parseResourceVersion(cm.ResourceVersion); got >= written {
				return
			}
		case <-deadline:
			t.Fatalf("no bookmark at or past revision %d", written)
		}
	}
}
