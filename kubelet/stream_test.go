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
	"strings"
	"testing"
	"time"

	"github.com/tinykube/tinykube/internal/testimage"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
)

func TestExecThroughTheAPIServer(t *testing.T) {
	n := startNodeWithAPI(t)
	n.create(newPod("shell", testimage.BusyboxRef).command("sleep", "3600").obj())
	n.waitPod("shell", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	run := func(stdin io.Reader, cmd ...string) (string, string, error) {
		t.Helper()
		req := n.client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("shell").SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: "main", Command: cmd, Stdin: stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		ex, err := remotecommand.NewSPDYExecutor(n.api.Config, "POST", req.URL())
		if err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Stderr: &errOut})
		return out.String(), errOut.String(), err
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
		{"exit code", nil, []string{"sh", "-c", "exit 3"}, "", "", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := run(tt.stdin, tt.cmd...)
			var code int
			var exitErr exec.CodeExitError
			if errors.As(err, &exitErr) {
				code = exitErr.Code
			} else if err != nil {
				t.Fatalf("exec %v: %v", tt.cmd, err)
			}
			if out != tt.wantOut || errOut != tt.wantErr || code != tt.wantCode {
				t.Errorf("exec %v: stdout %q stderr %q code %d; want %q %q %d", tt.cmd, out, errOut, code, tt.wantOut, tt.wantErr, tt.wantCode)
			}
		})
	}
}

func TestPortForwardThroughTheAPIServer(t *testing.T) {
	n := startNodeWithAPI(t)
	n.create(newPod("web", testimage.ServerRef).readiness("/healthz").obj())
	n.waitPod("web", 60*time.Second, "Ready", podReady)

	req := n.client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("web").SubResource("portforward")
	rt, upgrader, err := spdy.RoundTripperFor(n.api.Config)
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", (*url.URL)(req.URL()))
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
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
	for i := 0; i < 2; i++ { // two connections over one forward
		got := httpGet(t, fmt.Sprintf("http://%s/", net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[0].Local))))
		if got != "hello from web\n" {
			t.Errorf("through the forward: %q", got)
		}
	}
}
