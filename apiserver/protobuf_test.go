package apiserver

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
)

// typedClientAccept is what client-go's generated clients send.
const typedClientAccept = "application/vnd.kubernetes.protobuf,application/json"

func TestProtobufAnswersWhenPreferred(t *testing.T) {
	ts := newTestServer(t)
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx(t), makePod("p"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	decoder := scheme.Codecs.UniversalDeserializer()
	for _, path := range []string{"/api/v1/namespaces/default/pods/p", "/api/v1/namespaces/default/pods"} {
		resp := ts.do("GET", path, "", "", "Accept", typedClientAccept)
		if resp.code != 200 || resp.header.Get("Content-Type") != mediaProtobuf {
			t.Fatalf("%s: %d %q", path, resp.code, resp.header.Get("Content-Type"))
		}
		obj, _, err := decoder.Decode(resp.body, nil, nil)
		if err != nil {
			t.Fatalf("%s: decoding protobuf: %v", path, err)
		}
		switch o := obj.(type) {
		case *corev1.Pod:
			if o.Name != "p" || o.ResourceVersion == "" {
				t.Fatalf("pod %+v", o.ObjectMeta)
			}
		case *corev1.PodList:
			if len(o.Items) != 1 || o.ResourceVersion == "" {
				t.Fatalf("list %+v", o)
			}
		default:
			t.Fatalf("%s: got %T", path, obj)
		}
	}
	// JSON first still gets JSON; a Table is always JSON.
	if resp := ts.do("GET", "/api/v1/namespaces/default/pods/p", "", "", "Accept", "application/json,application/vnd.kubernetes.protobuf"); resp.header.Get("Content-Type") != mediaJSON {
		t.Fatalf("JSON first: %q", resp.header.Get("Content-Type"))
	}
	if resp := ts.do("GET", "/api/v1/namespaces/default/pods/p", "", "", "Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"); resp.header.Get("Content-Type") != mediaJSON {
		t.Fatalf("Table: %q", resp.header.Get("Content-Type"))
	}
}

func TestProtobufWatchIsLengthPrefixedWatchEvents(t *testing.T) {
	ts := newTestServer(t)
	c, cancel := contextWithCancel(t)
	defer cancel()
	req, _ := http.NewRequestWithContext(c, "GET", ts.http.URL+"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", nil)
	req.Header.Set("Accept", typedClientAccept)
	if _, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.kubernetes.protobuf;stream=watch" {
		t.Fatalf("Content-Type %q", ct)
	}
	decoder := scheme.Codecs.UniversalDeserializer()
	next := func() (string, runtime.Object) {
		var size [4]byte
		if _, err := io.ReadFull(resp.Body, size[:]); err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(resp.Body, frame); err != nil {
			t.Fatal(err)
		}
		var ev metav1.WatchEvent
		if err := ev.Unmarshal(frame); err != nil {
			t.Fatalf("WatchEvent: %v", err)
		}
		if !bytes.HasPrefix(ev.Object.Raw, []byte("k8s\x00")) {
			t.Fatalf("object without the protobuf envelope: %q", ev.Object.Raw)
		}
		obj, _, err := decoder.Decode(ev.Object.Raw, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ev.Type, obj
	}
	if typ, obj := next(); typ != string(watch.Added) || obj.(*corev1.ConfigMap).Name != "cm" {
		t.Fatalf("got %s %v", typ, obj)
	}
	if typ, obj := next(); typ != string(watch.Bookmark) || obj.(*corev1.ConfigMap).Annotations[initialEventsEndAnnotation] != "true" {
		t.Fatalf("got %s %v", typ, obj)
	}
	// client-go's typed watch decodes the same stream.
	w, err := ts.client.CoreV1().ConfigMaps("default").Watch(ctx(t), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if ev := <-w.ResultChan(); ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "cm" {
		t.Fatalf("typed watch: %+v", ev)
	}
}
