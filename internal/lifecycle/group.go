package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// Component is one part of a process that runs until its context ends.
type Component struct {
	// Name names the component in log lines (the component attribute) and
	// in the error that stops the group: "apiserver", "kubelet".
	Name string
	// Run runs the component until ctx ends. It must return once ctx has
	// ended; nil then is a clean stop. Any return before ctx ended, and any
	// error, is a failure that stops the group.
	Run func(ctx context.Context) error
	// Ready, when not nil, is closed once the component serves. Start
	// waits for it before it returns, so the next component starts only
	// then. A nil Ready counts as ready as soon as Run is called.
	Ready <-chan struct{}
	// StartTimeout bounds how long Start waits for Ready; zero waits until
	// the component fails or the group's context ends.
	StartTimeout time.Duration
	// StopTimeout bounds how long Stop waits for Run to return once its
	// context has ended; zero takes Stop's own timeout.
	StopTimeout time.Duration
}

// Error is a component's failure.
type Error struct {
	Component string
	Err       error
}

// Failed wraps err as component's failure.
func Failed(component string, err error) *Error { return &Error{Component: component, Err: err} }

func (e *Error) Error() string { return e.Component + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Group is a set of running components. The zero value is not usable;
// make one with New.
type Group struct {
	logger *slog.Logger
	// base is the parent of every component's context: not the caller's,
	// so a signal ends components in reverse order through Stop rather
	// than all at once.
	base context.Context

	mu      sync.Mutex
	started []*running
	failed  chan struct{} // closed at the first failure
	err     error         // the first failure, naming its component
}

type running struct {
	name        string
	stopTimeout time.Duration
	cancel      context.CancelFunc
	done        chan struct{}
}

// New makes an empty group whose components log through logger, each with
// its own component attribute. Values of ctx (not its cancellation) reach
// every component's context.
func New(ctx context.Context, logger *slog.Logger) *Group {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Group{logger: logger, base: context.WithoutCancel(ctx), failed: make(chan struct{})}
}

// Logger is the logger a component named name logs through: the group's,
// with component=name.
func (g *Group) Logger(name string) *slog.Logger { return g.logger.With("component", name) }

// Context is a context carrying the logger of component name for code that
// takes its logger from the context (klog.FromContext, as client-go's
// reflectors and upstream-style components do).
func (g *Group) Context(ctx context.Context, name string) context.Context {
	return klog.NewContext(ctx, logr.FromSlogHandler(g.Logger(name).Handler()))
}

// Start runs c and returns once it is ready. It returns an error, and
// starts nothing, when an earlier component has failed; it returns c's
// failure when c fails or its StartTimeout passes before it is ready, and
// ctx's error when ctx ends first. In every error case c is stopped again
// before Start returns.
func (g *Group) Start(ctx context.Context, c Component) error {
	if err := g.Err(); err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(g.Context(g.base, c.Name))
	r := &running{name: c.Name, stopTimeout: c.StopTimeout, cancel: cancel, done: make(chan struct{})}
	g.mu.Lock()
	g.started = append(g.started, r)
	g.mu.Unlock()
	go func() {
		defer close(r.done)
		err := c.Run(cctx)
		if cctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
			return // stopped, as asked
		}
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		g.fail(Failed(c.Name, err))
	}()

	ready := c.Ready
	if ready == nil {
		ready = closed
	}
	var timeout <-chan time.Time
	if c.StartTimeout > 0 {
		t := time.NewTimer(c.StartTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ready:
		g.Logger(c.Name).Info("ready")
		return nil
	case <-g.failed:
		return g.Err()
	case <-timeout:
		g.fail(Failed(c.Name, fmt.Errorf("not ready after %s", c.StartTimeout)))
		return g.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (g *Group) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return
	}
	g.err = err
	close(g.failed)
}

// Err is the first failure, or nil.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Failed is closed when a component fails.
func (g *Group) Failed() <-chan struct{} { return g.failed }

// Wait blocks until ctx ends or a component fails, and returns the
// failure, or nil when ctx ended first.
func (g *Group) Wait(ctx context.Context) error {
	select {
	case <-g.failed:
		return g.Err()
	case <-ctx.Done():
		return nil
	}
}

// Stop ends the components in reverse order of start, each one only after
// the one started after it has returned, and gives each at most timeout
// to return, or its own StopTimeout when it has one. It returns the names of those that did not return in time;
// they are left running, and the next one is stopped all the same.
// Stop may be called more than once.
func (g *Group) Stop(timeout time.Duration) []string {
	g.mu.Lock()
	started := g.started
	g.started = nil
	g.mu.Unlock()
	var late []string
	for i := len(started) - 1; i >= 0; i-- {
		r := started[i]
		r.cancel()
		wait := timeout
		if r.stopTimeout > 0 {
			wait = r.stopTimeout
		}
		t := time.NewTimer(wait)
		select {
		case <-r.done:
		case <-t.C:
			late = append(late, r.name)
			g.Logger(r.name).Warn("still stopping; not waiting for it", "after", wait)
		}
		t.Stop()
	}
	return late
}
