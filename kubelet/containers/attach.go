package containers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/containerd/v2/client"
)

// Labels recording a container's stdio options, so that a kubelet that
// restarts re-attaches them as they were.
const (
	labelStdin     = "tinykube.io/stdin"
	labelStdinOnce = "tinykube.io/stdin-once"
	labelTTY       = "tinykube.io/tty"
)

// stdio is a running container's stdin and output as the kubelet holds
// them: output goes to the log and to every attached client; clients'
// input goes to the container's stdin.
type stdio struct {
	tty, stdinOnce bool
	// stdin feeds the container's stdin; nil when it has none.
	stdin *io.PipeWriter
	task  client.Task

	mu       sync.Mutex
	attached map[*attachment]bool
	done     chan struct{} // closed when the container's output ended
	doneOnce sync.Once
}

// attachment is one client's output: chunks queue up for the client, so
// that a slow client holds up neither the container nor its log; one that
// falls too far behind is dropped.
type attachment struct {
	stdout, stderr chan []byte // nil for a stream the client did not ask for
	dropped        chan struct{}
	dropOnce       sync.Once
}

// attachQueue is how many chunks of output wait for a client.
const attachQueue = 64

func newAttachment(stdout, stderr bool) *attachment {
	a := &attachment{dropped: make(chan struct{})}
	if stdout {
		a.stdout = make(chan []byte, attachQueue)
	}
	if stderr {
		a.stderr = make(chan []byte, attachQueue)
	}
	return a
}

func (a *attachment) drop() { a.dropOnce.Do(func() { close(a.dropped) }) }

func newStdio(stdin, stdinOnce, tty bool) (*stdio, io.Reader) {
	s := &stdio{tty: tty, stdinOnce: stdinOnce, attached: map[*attachment]bool{}, done: make(chan struct{})}
	if !stdin {
		return s, nil
	}
	r, w := io.Pipe()
	s.stdin = w
	return s, r
}

// output is the writer for one of the container's output streams: the log
// first, then each attached client; a client that fails is dropped.
func (s *stdio) output(log io.Writer, stderr bool) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		n, err := log.Write(p)
		s.mu.Lock()
		defer s.mu.Unlock()
		for a := range s.attached {
			ch := a.stdout
			if stderr {
				ch = a.stderr
			}
			if ch == nil {
				continue
			}
			select {
			case ch <- bytes.Clone(p):
			default:
				a.drop()
				delete(s.attached, a)
			}
		}
		return n, err
	})
}

// close ends every attachment: the container's output has ended.
func (s *stdio) close() { s.doneOnce.Do(func() { close(s.done) }) }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (r *Runtime) setStdio(id string, s *stdio) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == nil {
		delete(r.stdio, id)
	} else {
		r.stdio[id] = s
	}
}

// Attach connects a client to a running container's stdio (any stream may
// be nil) until the container exits or ctx ends, as containerd's CRI
// attaches: output from now on is copied to stdout and stderr (on a
// terminal, all of it to stdout); input goes to the container's stdin if
// it has one. When the client's stdin ends, a stdinOnce container without
// a terminal gets its stdin closed and the client stays attached to the
// output; otherwise the attachment ends.
func (r *Runtime) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, resize <-chan TerminalSize) error {
	r.mu.Lock()
	s := r.stdio[id]
	r.mu.Unlock()
	if s == nil {
		return fmt.Errorf("containers: attach %s: container is not running", id)
	}
	if s.tty {
		stderr = nil
	}
	a := newAttachment(stdout != nil, stderr != nil)
	s.mu.Lock()
	s.attached[a] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.attached, a)
		s.mu.Unlock()
	}()
	detached := make(chan struct{})
	if stdin != nil && s.stdin != nil {
		go func() {
			_, _ = io.Copy(s.stdin, stdin)
			if s.stdinOnce && !s.tty {
				s.stdin.Close()
				// The shim holds the stdin FIFO open too, so that
				// clients may come and go: ask it to let go.
				if s.task != nil {
					_ = s.task.CloseIO(r.ns(context.WithoutCancel(ctx)), client.WithStdinCloser)
				}
				return
			}
			close(detached)
		}()
	}
	write := func(w io.Writer, p []byte) {
		if _, err := w.Write(p); err != nil {
			a.drop()
		}
	}
	for {
		select {
		case p := <-a.stdout:
			write(stdout, p)
		case p := <-a.stderr:
			write(stderr, p)
		case <-a.dropped:
			return fmt.Errorf("containers: attach %s: client too slow or gone", id)
		case <-ctx.Done():
			return nil
		case <-s.done:
			// The container's output has ended: pass on what is queued.
			for {
				select {
				case p := <-a.stdout:
					write(stdout, p)
				case p := <-a.stderr:
					write(stderr, p)
				default:
					return nil
				}
			}
		case <-detached:
			return nil
		case sz, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			if s.task != nil {
				_ = s.task.Resize(r.ns(ctx), uint32(sz.Width), uint32(sz.Height))
			}
		}
	}
}
