package apiserver

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func withRequestTimeout(d time.Duration) func(*Config) {
	return func(c *Config) { c.RequestTimeout = d }
}

// TestSlowBodyIsCutAtTheRequestTimeout is issue 13's finding 5: a client
// that sends its headers and then stalls, or dribbles its body a byte at
// a time, gets upstream's 504 at the request timeout and loses the
// connection.
func TestSlowBodyIsCutAtTheRequestTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	ts := newTestServer(t, withRequestTimeout(timeout))
	for _, dribble := range []bool{false, true} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.http.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: tinykube\r\n"+
			"Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		if dribble {
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
						if _, err := io.WriteString(conn, " "); err != nil {
							return
						}
					}
				}
			}()
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("dribble=%v: %v", dribble, err)
		}
		got := readAll(t, resp)
		took := time.Since(start)
		want := `"message":"Timeout: request did not complete within the allotted timeout","reason":"Timeout"`
		if got.code != http.StatusGatewayTimeout || !strings.Contains(string(got.body), want) {
			t.Errorf("dribble=%v: got %d %s", dribble, got.code, got.body)
		}
		if took < timeout || took > timeout+2*time.Second {
			t.Errorf("dribble=%v: answered after %v, want about %v", dribble, took, timeout)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Errorf("dribble=%v: the connection is still open", dribble)
		}
		close(stop)
	}
}

// TestWatchesOutliveTheRequestTimeout: watches are long-running, as
// upstream's.
func TestWatchesOutliveTheRequestTimeout(t *testing.T) {
	ts := newTestServer(t, withRequestTimeout(time.Second))
	w, err := ts.client.CoreV1().ConfigMaps("default").Watch(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	time.Sleep(2 * time.Second)
	if _, err := ts.client.CoreV1().ConfigMaps("default").Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the watch ended")
			}
			if cm, isCM := ev.Object.(*corev1.ConfigMap); ev.Type == watch.Added && isCM && cm.Name == "late" {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
	}
}
