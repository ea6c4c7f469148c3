package apiserver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// startFakeKubelet serves the kubelet's containerLogs endpoint over TLS on
// 127.0.0.1 and registers a Node pointing at it.
func startFakeKubelet(t *testing.T, ts *testServer) {
	t.Helper()
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/containerLogs/"):
			fmt.Fprintf(w, "log of %s follow=%s\n", r.URL.Path, r.URL.Query().Get("follow"))
		case r.URL.Path == "/exec/default/web/stopped":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"container stopped is not running in pod web","reason":"BadRequest","code":400}`)
		case (strings.HasPrefix(r.URL.Path, "/exec/") || strings.HasPrefix(r.URL.Path, "/portForward/")) && r.Header.Get("Upgrade") == "SPDY/3.1":
			// Switch protocols, announce what was asked, then echo.
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n%s?%s\n", r.URL.Path, r.URL.RawQuery)
			rw.Flush()
			_, _ = io.Copy(conn, rw)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(kubelet.Close)
	ts.api.cfg.KubeletTransport = kubelet.Client().Transport
	host, portText, _ := net.SplitHostPort(kubelet.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a"},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		},
	}
	if _, err := ts.client.CoreV1().Nodes().Create(ctx(t), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createPodOn creates pod in namespace default, bound to node.
func createPodOn(t *testing.T, ts *testServer, pod *corev1.Pod, node string) {
	t.Helper()
	pod.Spec.NodeName = node
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestPodLogsAreProxiedToTheKubelet(t *testing.T) {
	ts := newTestServer(t)
	startFakeKubelet(t, ts)
	pods := ts.client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx(t), makePod("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	resp := ts.do("GET", "/api/v1/namespaces/default/pods/web/log", "", "")
	if st := resp.status(t); resp.code != 400 || st.Message != "pod web does not have a host assigned" {
		t.Fatalf("unscheduled pod: %d %s", resp.code, resp.body)
	}
	if err := pods.Bind(ctx(t), &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Target: corev1.ObjectReference{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stream, err := pods.GetLogs("web", &corev1.PodLogOptions{Follow: true}).Stream(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	body, _ := io.ReadAll(stream)
	if string(body) != "log of /containerLogs/default/web/c follow=true\n" {
		t.Fatalf("log body %q", body)
	}
	resp = ts.do("GET", "/api/v1/namespaces/default/pods/web/log?container=nope", "", "")
	if st := resp.status(t); resp.code != 400 || st.Message != "container nope is not valid for pod web" {
		t.Fatalf("bad container: %d %s", resp.code, resp.body)
	}
}

// Clients fall back to SPDY only on a non-101 answer: WebSocket protocols
// other than v5 (exec, attach) and the SPDY tunnel (port-forward) get 400.
func TestWebSocketWithoutATranslatableProtocolIsRefused(t *testing.T) {
	ts := newTestServer(t)
	startFakeKubelet(t, ts)
	createPodOn(t, ts, makePod("web"), "node-a")
	for path, protocol := range map[string]string{
		"exec?command=ls&stdout=true": "v4.channel.k8s.io",
		"attach?stdout=true":          "base64.channel.k8s.io",
		"portforward?ports=80":        "portforward.k8s.io",
	} {
		resp := ts.do("GET", "/api/v1/namespaces/default/pods/web/"+path, "", "",
			"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol", protocol)
		if st := resp.status(t); resp.code != http.StatusBadRequest || st.Reason != metav1.StatusReasonBadRequest {
			t.Errorf("%s over WebSocket %s: %d %s", path, protocol, resp.code, resp.body)
		}
	}
}

// The kubelet's refusal of an exec reaches a WebSocket client as the
// Status on the error channel, as kubectl prints it.
func TestWebSocketExecCarriesTheKubeletsStatus(t *testing.T) {
	ts := newTestServer(t)
	startFakeKubelet(t, ts)
	pod := makePod("web")
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "stopped", Image: "busybox"})
	createPodOn(t, ts, pod, "node-a")
	req := ts.client.CoreV1().RESTClient().Get().Resource("pods").Namespace("default").Name("web").SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "stopped", Command: []string{"ls"}, Stdout: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewWebSocketExecutor(ts.config, "GET", req.URL().String())
	if err != nil {
		t.Fatal(err)
	}
	err = ex.StreamWithContext(ctx(t), remotecommand.StreamOptions{Stdout: io.Discard})
	if err == nil || err.Error() != "container stopped is not running in pod web" {
		t.Fatalf("exec of a stopped container: %v", err)
	}
}

// Port-forward's SPDY tunnelled in WebSocket messages reaches the kubelet
// as a SPDY upgrade, and the bytes flow both ways.
func TestWebSocketPortForwardIsTunnelledToTheKubelet(t *testing.T) {
	ts := newTestServer(t)
	startFakeKubelet(t, ts)
	createPodOn(t, ts, makePod("web"), "node-a")
	wsURL := "ws" + strings.TrimPrefix(ts.http.URL, "http") + "/api/v1/namespaces/default/pods/web/portforward"
	conn, resp, err := (&websocket.Dialer{Subprotocols: []string{"SPDY/3.1+portforward.k8s.io"}}).Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer conn.Close()
	if conn.Subprotocol() != "SPDY/3.1+portforward.k8s.io" {
		t.Fatalf("subprotocol %q", conn.Subprotocol())
	}
	read := func() string {
		t.Helper()
		var got []byte
		for !bytes.Contains(got, []byte("\n")) {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("read: %v (so far %q)", err, got)
			}
			got = append(got, msg...)
		}
		return string(got)
	}
	if got := read(); got != "/portForward/default/web?\n" {
		t.Fatalf("kubelet saw %q", got)
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "ping\n" {
		t.Fatalf("tunnel echoed %q", got)
	}
}

func TestSPDYExecIsTunnelledToTheKubelet(t *testing.T) {
	ts := newTestServer(t)
	startFakeKubelet(t, ts)
	createPodOn(t, ts, makePod("web"), "node-a")
	conn, err := net.Dial("tcp", ts.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/namespaces/default/pods/web/exec?command=ls&stdout=true&stdin=true HTTP/1.1\r\nHost: x\r\n"+
		"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n")
	reader := bufio.NewReader(conn)
	resp, err := http.ReadResponse(reader, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	line, _ := reader.ReadString('\n')
	if line != "/exec/default/web/c?command=ls&input=1&output=1\n" {
		t.Fatalf("kubelet saw %q", line)
	}
	fmt.Fprint(conn, "ping\n")
	if echo, _ := reader.ReadString('\n'); echo != "ping\n" {
		t.Fatalf("tunnel echoed %q", echo)
	}
}
