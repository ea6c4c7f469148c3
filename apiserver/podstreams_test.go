package apiserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// startFakeKubelet serves the kubelet's containerLogs endpoint over TLS on
// 127.0.0.1 and registers a Node pointing at it.
func startFakeKubelet(t *testing.T, ts *testServer) {
	t.Helper()
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/containerLogs/"):
			fmt.Fprintf(w, "log of %s follow=%s\n", r.URL.Path, r.URL.Query().Get("follow"))
		case strings.HasPrefix(r.URL.Path, "/exec/") && r.Header.Get("Upgrade") == "SPDY/3.1":
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

// kubectl exec and port-forward try WebSocket first and fall back to SPDY
// only on a non-101 answer.
func TestWebSocketExecIsRefusedSoClientsFallBackToSPDY(t *testing.T) {
	ts := newTestServer(t)
	startFakeKubelet(t, ts)
	resp := ts.do("GET", "/api/v1/namespaces/default/pods/web/exec?command=ls&stdout=true", "", "",
		"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Protocol", "v5.channel.k8s.io")
	if resp.code == http.StatusSwitchingProtocols || resp.code < 400 {
		t.Fatalf("websocket exec answered %d", resp.code)
	}
}

func TestSPDYExecIsTunnelledToTheKubelet(t *testing.T) {
	ts := newTestServer(t)
	startFakeKubelet(t, ts)
	pod := makePod("web")
	pod.Spec.NodeName = "node-a"
	if _, err := ts.client.CoreV1().Pods("default").Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
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
