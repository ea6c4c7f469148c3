package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// Config configures a Supervisor.
type Config struct {
	// Logger is where the supervisor logs; nil discards.
	Logger *slog.Logger
	// Dir holds containerd's config, root, state, socket and log
	// (DATA_DIR/agent/containerd). Required.
	Dir string
	// Binary is the containerd executable; default "containerd" from PATH.
	Binary string
	// RestartDelay is the pause before restarting a containerd that died;
	// default 1s.
	RestartDelay time.Duration
	// StopTimeout is how long shutdown waits after SIGTERM before SIGKILL;
	// default 10s.
	StopTimeout time.Duration
	// ReadyTimeout bounds each wait for the socket to answer; default 30s.
	ReadyTimeout time.Duration
}

// Supervisor runs and watches one containerd child process.
type Supervisor struct {
	cfg   Config
	log   *slog.Logger
	ready chan struct{}
	once  sync.Once

	mu      sync.Mutex
	pid     int
	starts  int
	lastErr error
}

// New validates cfg, checks that containerd, runc and the runc shim are
// installed, and returns a Supervisor that has not started anything yet.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Dir == "" {
		return nil, errors.New("supervisor: Dir is required")
	}
	if cfg.Binary == "" {
		if err := CheckHost(true); err != nil {
			return nil, err
		}
		cfg.Binary = "containerd"
	} else if err := CheckHost(false); err != nil {
		return nil, err
	}
	if cfg.RestartDelay <= 0 {
		cfg.RestartDelay = time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = abs
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{cfg: cfg, log: log, ready: make(chan struct{})}
	// containerd refuses socket paths over 104 bytes (its ttrpc socket
	// adds ".ttrpc").
	if n := len(s.Address() + ".ttrpc"); n > 104 {
		return nil, fmt.Errorf("supervisor: containerd socket path %s.ttrpc is %d bytes, over the 104 unix sockets allow: use a shorter data dir", s.Address(), n)
	}
	return s, nil
}

// Address is the containerd socket path.
func (s *Supervisor) Address() string { return filepath.Join(s.cfg.Dir, "containerd.sock") }

// Ready is closed once containerd first answers on its socket.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// PID is the process id of the running containerd, 0 when none runs.
func (s *Supervisor) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Starts counts how many times containerd was started.
func (s *Supervisor) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

func (s *Supervisor) configPath() string { return filepath.Join(s.cfg.Dir, "config.toml") }

// writeConfig writes a containerd 1.6 (version 2) config. The CRI plugin is
// disabled: the kubelet drives containerd directly.
func (s *Supervisor) writeConfig() error {
	for _, d := range []string{"root", "state"} {
		if err := os.MkdirAll(filepath.Join(s.cfg.Dir, d), 0o711); err != nil {
			return err
		}
	}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q
`, filepath.Join(s.cfg.Dir, "root"), filepath.Join(s.cfg.Dir, "state"), s.Address(), s.Address()+".ttrpc")
	return os.WriteFile(s.configPath(), []byte(cfg), 0o600)
}

// Run starts containerd and keeps it running until ctx ends, then stops it
// (SIGTERM, SIGKILL after StopTimeout). It returns an error only when
// containerd cannot be started at all the first time.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := s.writeConfig(); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	first := true
	for {
		err := s.runOnce(ctx, first)
		if ctx.Err() != nil {
			return nil
		}
		if first && err != nil && !s.isReady() {
			return err
		}
		first = false
		s.log.Warn("containerd stopped; restarting it", "err", err, "in", s.cfg.RestartDelay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.cfg.RestartDelay):
		}
	}
}

func (s *Supervisor) isReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

func (s *Supervisor) runOnce(ctx context.Context, first bool) error {
	logf, err := os.OpenFile(filepath.Join(s.cfg.Dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	defer logf.Close()
	// A stale socket from a killed containerd would make the wait below
	// succeed against nothing; containerd removes it itself too.
	_ = os.Remove(s.Address())
	cmd := exec.Command(s.cfg.Binary, "--config", s.configPath())
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// containerd must not outlive tinykube; the containers do, through
		// their shims.
		Pdeathsig: syscall.SIGKILL,
	}
	// Pdeathsig fires when the thread that started the child ends, not
	// the process (go.dev/issue/27505), and the Go runtime ends threads:
	// every pod sandbox is made on a locked thread that is then discarded.
	// containerd is started from a thread of its own, locked until it
	// exits.
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("supervisor: start containerd: %w", err)
	}
	s.mu.Lock()
	s.pid = cmd.Process.Pid
	s.starts++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.pid = 0
		s.mu.Unlock()
	}()

	readyErr := make(chan error, 1)
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	go func() { readyErr <- s.waitServing(waitCtx) }()

	for {
		select {
		case err := <-readyErr:
			if err != nil && waitCtx.Err() == nil {
				s.log.Warn("containerd did not become ready", "err", err)
				_ = cmd.Process.Kill()
				return fmt.Errorf("supervisor: containerd did not answer on %s: %w (see %s)", s.Address(), err, logf.Name())
			}
			if err == nil {
				s.once.Do(func() { close(s.ready) })
			}
			readyErr = nil
		case err := <-exited:
			return fmt.Errorf("supervisor: containerd exited: %v (see %s)", err, tail(logf.Name()))
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(s.cfg.StopTimeout):
				_ = cmd.Process.Kill()
				<-exited
			}
			return ctx.Err()
		}
	}
}

// waitServing polls the socket until containerd answers its health check.
func (s *Supervisor) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if _, err := os.Stat(s.Address()); err == nil {
			if err := Ping(ctx, s.Address()); err == nil {
				return nil
			} else {
				last = err
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return last
		case <-tick.C:
		}
	}
}

// Ping reports whether a containerd answers on address.
func Ping(ctx context.Context, address string) error {
	c, err := client.New(address, client.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ok, err := c.IsServing(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("not serving")
	}
	return nil
}

// tail returns the last lines of a log file for an error message.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return path
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return path
	}
	off := st.Size() - 512
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return path
	}
	lines := strings.Split(strings.TrimSpace(string(buf)), "\n")
	return fmt.Sprintf("%s: %s", path, lines[len(lines)-1])
}
