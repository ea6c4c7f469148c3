package kubelet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tinykube/tinykube/internal/testimage"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
)

// kubectl 1.32 execs over WebSocket (v5.channel.k8s.io, which the API
// server translates to SPDY toward the kubelet) and falls back to SPDY:
// both must behave the same.
func TestExecThroughTheAPIServer(t *testing.T) {
	n := startNodeWithAPI(t)
	n.create(newPod("shell", testimage.BusyboxRef).command("sleep", "3600").obj())
	n.waitPod("shell", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	executors := map[string]func(req *rest.Request) (remotecommand.Executor, error){
		"SPDY": func(req *rest.Request) (remotecommand.Executor, error) {
			return remotecommand.NewSPDYExecutor(n.api.Config, "POST", req.URL())
		},
		"WebSocket": func(req *rest.Request) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutor(n.api.Config, "GET", req.URL().String())
		},
	}
	for transport, newExecutor := range executors {
		streamCtx := func(ctx context.Context, t *testing.T, opts remotecommand.StreamOptions, cmd ...string) error {
			t.Helper()
			req := n.client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("shell").SubResource("exec").
				VersionedParams(&corev1.PodExecOptions{Container: "main", Command: cmd, Stdin: opts.Stdin != nil, Stdout: opts.Stdout != nil, Stderr: opts.Stderr != nil, TTY: opts.Tty}, scheme.ParameterCodec)
			ex, err := newExecutor(req)
			if err != nil {
				t.Fatal(err)
			}
			return ex.StreamWithContext(ctx, opts)
		}
		stream := func(t *testing.T, opts remotecommand.StreamOptions, cmd ...string) error {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return streamCtx(ctx, t, opts, cmd...)
		}
		tests := []struct {
			name             string
			stdin            io.Reader
			cmd              []string
			wantOut, wantErr string
			wantCode         int
		}{
			{"output of a command", nil, []string{"sh", "-c", "echo hello $(hostname)"}, "hello shell\n", "", 0},
			{"stdin reaches the command and its end ends it", strings.NewReader("from stdin\n"), []string{"cat"}, "from stdin\n", "", 0},
			{"stderr apart from stdout", nil, []string{"sh", "-c", "echo out; echo err >&2"}, "out\n", "err\n", 0},
			{"exit code", nil, []string{"sh", "-c", "echo bye; exit 3"}, "bye\n", "", 3},
		}
		for _, tt := range tests {
			t.Run(transport+"/"+tt.name, func(t *testing.T) {
				var out, errOut bytes.Buffer
				opts := remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}
				if tt.stdin != nil {
					opts.Stdin = tt.stdin
				}
				err := stream(t, opts, tt.cmd...)
				code := 0
				var exitErr exec.CodeExitError
				if errors.As(err, &exitErr) {
					code = exitErr.Code
				} else if err != nil {
					t.Fatalf("exec %v: %v", tt.cmd, err)
				}
				if out.String() != tt.wantOut || errOut.String() != tt.wantErr || code != tt.wantCode {
					t.Errorf("exec %v: stdout %q stderr %q code %d; want %q %q %d", tt.cmd, out.String(), errOut.String(), code, tt.wantOut, tt.wantErr, tt.wantCode)
				}
			})
		}
		t.Run(transport+"/terminal resize", func(t *testing.T) {
			var out bytes.Buffer
			sizes := make(sizeQueue, 1)
			sizes <- remotecommand.TerminalSize{Width: 120, Height: 33}
			close(sizes)
			// The size travels on its own stream: the command waits
			// until its terminal has it.
			script := `for i in $(seq 100); do [ "$(stty size 2>/dev/null)" = "33 120" ] && break; sleep 0.1; done; stty size`
			if err := stream(t, remotecommand.StreamOptions{Stdout: &out, Tty: true, TerminalSizeQueue: sizes}, "sh", "-c", script); err != nil {
				t.Fatal(err)
			}
			if out.String() != "33 120\r\n" {
				t.Errorf("stty size on the terminal: %q", out.String())
			}
		})
		t.Run(transport+"/a client that goes away ends the command", func(t *testing.T) {
			sleep := "sleep 77" + strconv.Itoa(len(transport)) // one per transport
			ctx, cancel := context.WithCancel(context.Background())
			var out syncBuffer
			errc := make(chan error, 1)
			go func() {
				errc <- streamCtx(ctx, t, remotecommand.StreamOptions{Stdout: &out}, "sh", "-c", "echo started; exec "+sleep)
			}()
			waitOutput(t, &out, "started\n")
			cancel()
			<-errc
			if err := waitFor(30*time.Second, func() bool {
				var ps bytes.Buffer
				return stream(t, remotecommand.StreamOptions{Stdout: &ps}, "ps") == nil && !strings.Contains(ps.String(), sleep)
			}); err != nil {
				t.Errorf("%q still runs after its client went away", sleep)
			}
		})
	}
}

// kubectl port-forward tunnels SPDY in WebSocket first and falls back to
// SPDY. Both reach the pod's own localhost, as upstream's runtimes
// forward: a server listening only on 127.0.0.1 in the pod is reachable.
func TestPortForwardThroughTheAPIServer(t *testing.T) {
	n := startNodeWithAPI(t)
	n.create(newPod("web", testimage.ServerRef).readiness("/healthz").obj())
	local := newPod("local", testimage.BusyboxRef).command("sh", "-c",
		"mkdir /tmp/www && echo only on localhost > /tmp/www/index.html && exec busybox httpd -f -p 127.0.0.1:9090 -h /tmp/www")
	local.p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/"}}},
		PeriodSeconds: 1,
	}
	n.create(local.obj())
	n.waitPod("web", 60*time.Second, "Ready", podReady)
	n.waitPod("local", 60*time.Second, "Ready", podReady)

	dialers := map[string]func(pod string) httpstream.Dialer{
		"SPDY": func(pod string) httpstream.Dialer {
			req := n.client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod).SubResource("portforward")
			rt, upgrader, err := spdy.RoundTripperFor(n.api.Config)
			if err != nil {
				t.Fatal(err)
			}
			return spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", (*url.URL)(req.URL()))
		},
		"WebSocket": func(pod string) httpstream.Dialer {
			req := n.client.CoreV1().RESTClient().Get().Resource("pods").Namespace("default").Name(pod).SubResource("portforward")
			dialer, err := portforward.NewSPDYOverWebsocketDialer((*url.URL)(req.URL()), n.api.Config)
			if err != nil {
				t.Fatal(err)
			}
			return dialer
		},
	}
	for transport, dialer := range dialers {
		for _, tt := range []struct {
			pod, port, want string
		}{
			{"web", "8080", "hello from web\n"},
			{"local", "9090", "only on localhost\n"},
		} {
			t.Run(transport+"/"+tt.pod, func(t *testing.T) {
				n.checkPortForward(t, dialer(tt.pod), tt.port, tt.want)
			})
		}
	}
}

// checkPortForward forwards a local port to the pod's port through
// dialer: two connections over one forward get the answer want.
func (n *testNode) checkPortForward(t *testing.T, dialer httpstream.Dialer, port, want string) {
	t.Helper()
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + port}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	defer func() {
		close(stop)
		<-errc
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("port-forward: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("port-forward not ready after 30s")
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("ports %v, %v", ports, err)
	}
	for i := 0; i < 2; i++ {
		got := httpGet(t, fmt.Sprintf("http://%s/", net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[0].Local))))
		if got != want {
			t.Errorf("through the forward: %q, want %q", got, want)
		}
	}
}
