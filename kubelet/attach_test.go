package kubelet_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet/internal/nodetest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

type syncBuffer = nodetest.Buffer

// attach runs client-go's SPDY executor (or with webSocket its WebSocket
// one) on pods/attach through the API server, as kubectl attach does, and
// returns when the attachment ends.
func (n *testNode) attach(ctx context.Context, name string, webSocket bool, opts remotecommand.StreamOptions) error {
	n.t.Helper()
	req := n.client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(name).SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{Container: "main", Stdin: opts.Stdin != nil, Stdout: opts.Stdout != nil, Stderr: opts.Stderr != nil, TTY: opts.Tty}, scheme.ParameterCodec)
	var ex remotecommand.Executor
	var err error
	if webSocket {
		ex, err = remotecommand.NewWebSocketExecutor(n.api.Config, "GET", req.URL().String())
	} else {
		ex, err = remotecommand.NewSPDYExecutor(n.api.Config, "POST", req.URL())
	}
	if err != nil {
		n.t.Fatal(err)
	}
	return ex.StreamWithContext(ctx, opts)
}

func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	if err := waitFor(30*time.Second, func() bool { return strings.Contains(out.String(), want) }); err != nil {
		t.Fatalf("output %q never contained %q", out.String(), want)
	}
}

func TestAttachToAStdinOnceContainer(t *testing.T) {
	n := startNodeWithAPI(t)
	for _, transport := range []string{"spdy", "websocket"} {
		b := newPod("reader-"+transport, testimage.BusyboxRef).command("sh", "-c", `while read line; do echo "got $line"; echo "err $line" >&2; done; echo bye`).
			restartPolicy(corev1.RestartPolicyNever)
		c := &b.p.Spec.Containers[0]
		c.Stdin, c.StdinOnce = true, true
		n.create(b.obj())
	}
	for _, transport := range []string{"spdy", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			name := "reader-" + transport
			n.waitPod(name, 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out, errOut syncBuffer
			// The end of the client's input closes the container's stdin
			// (stdinOnce): the loop ends, and the attachment with the
			// container.
			err := n.attach(ctx, name, transport == "websocket", remotecommand.StreamOptions{Stdin: strings.NewReader("one\ntwo\n"), Stdout: &out, Stderr: &errOut})
			if err != nil {
				t.Fatalf("attach: %v", err)
			}
			if out.String() != "got one\ngot two\nbye\n" || errOut.String() != "err one\nerr two\n" {
				t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
			}
			p := n.waitPod(name, 30*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
			if got := p.Status.ContainerStatuses[0].State.Terminated; got == nil || got.ExitCode != 0 {
				t.Errorf("terminated %+v", got)
			}
		})
	}
}

func TestAttachToATerminal(t *testing.T) {
	n := startNodeWithAPI(t)
	b := newPod("term", testimage.BusyboxRef).command("sh").restartPolicy(corev1.RestartPolicyNever)
	c := &b.p.Spec.Containers[0]
	c.Stdin, c.StdinOnce, c.TTY = true, true, true
	n.create(b.obj())
	n.waitPod("term", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	in, stdin := io.Pipe()
	defer stdin.Close()
	var out syncBuffer
	sizes := make(sizeQueue, 1)
	sizes <- remotecommand.TerminalSize{Width: 100, Height: 40}
	close(sizes)
	done := make(chan error, 1)
	go func() {
		done <- n.attach(ctx, "term", true, remotecommand.StreamOptions{Stdin: in, Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
	}()
	io.WriteString(stdin, "echo hi-$((1+2))\n")
	waitOutput(t, &out, "hi-3\r\n")
	// The size arrives on its own stream: ask until the shell sees it.
	if err := waitFor(30*time.Second, func() bool {
		io.WriteString(stdin, "stty size\n")
		return strings.Contains(out.String(), "40 100\r\n")
	}); err != nil {
		t.Errorf("terminal size never 40x100: %q", out.String())
	}
	io.WriteString(stdin, "exit 4\n")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("attach: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("attach did not end when the container exited")
	}
	p := n.waitPod("term", 30*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if got := p.Status.ContainerStatuses[0].State.Terminated; got == nil || got.ExitCode != 4 {
		t.Errorf("terminated %+v, want exit 4", got)
	}
}

// sizeQueue hands client-go terminal sizes.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

// A container's stdin and terminal survive a kubelet restart: the new
// kubelet re-attaches them.
func TestAttachAfterAKubeletRestart(t *testing.T) {
	n := startNodeWithAPI(t)
	b := newPod("term", testimage.BusyboxRef).command("sh").restartPolicy(corev1.RestartPolicyNever)
	c := &b.p.Spec.Containers[0]
	c.Stdin, c.TTY = true, true
	n.create(b.obj())
	n.waitPod("term", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	n.stop()
	n.start()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	in, stdin := io.Pipe()
	defer stdin.Close()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- n.attach(ctx, "term", true, remotecommand.StreamOptions{Stdin: in, Stdout: &out, Tty: true})
	}()
	io.WriteString(stdin, "echo hi-$((2+3))\n")
	waitOutput(t, &out, "hi-5\r\n")
	io.WriteString(stdin, "exit 0\n")
	if err := <-done; err != nil {
		t.Errorf("attach: %v", err)
	}
	n.waitPod("term", 30*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
}
