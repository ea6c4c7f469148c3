package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Labels recording how a container ended, set when its task is deleted.
const (
	labelExitCode   = "tinykube.io/exit-code"
	labelFinishedAt = "tinykube.io/finished-at"
	labelReason     = "tinykube.io/reason"
	labelLogPath    = "tinykube.io/log-path"
)

// Config configures a Runtime.
type Config struct {
	// Logger is where the runtime logs; nil discards.
	Logger *slog.Logger
	// Client talks to containerd. Required.
	Client *client.Client
	// Namespace is the containerd namespace. Required.
	Namespace string
	// Snapshotter for root filesystems. Required.
	Snapshotter string
	// FIFODir holds the FIFOs of containers' stdout and stderr. Required.
	FIFODir string
	// OnExit is called with the pod UID when one of its containers exits.
	// It must not block.
	OnExit func(podUID string)
	// Now is the clock for log timestamps and labels; default time.Now.
	Now func() time.Time
}

// Runtime creates, starts, stops, lists and removes containers.
type Runtime struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // ends exit watchers and log copiers on Close
	cancel context.CancelFunc
	began  time.Time // containers created before were created by an earlier runtime

	mu      sync.Mutex
	watched map[string]bool // container IDs with an exit watcher
	// finalized is closed when a watched container's end is recorded.
	finalized map[string]chan struct{}
	locks     map[string]*sync.Mutex
	stdio     map[string]*stdio // of running containers, by ID
}

// New validates cfg.
func New(cfg Config) (*Runtime, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.Snapshotter == "" || cfg.FIFODir == "" {
		return nil, errors.New("containers: Client, Namespace, Snapshotter and FIFODir are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnExit == nil {
		cfg.OnExit = func(string) {}
	}
	if err := os.MkdirAll(cfg.FIFODir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(namespaces.WithNamespace(context.Background(), cfg.Namespace))
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runtime{cfg: cfg, log: log, ctx: ctx, cancel: cancel, began: time.Now(), watched: map[string]bool{}, finalized: map[string]chan struct{}{}, locks: map[string]*sync.Mutex{}, stdio: map[string]*stdio{}}, nil
}

// Close stops watching exits and copying logs; containers keep running.
func (r *Runtime) Close() { r.cancel() }

func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

func (r *Runtime) lock(id string) func() {
	r.mu.Lock()
	l, ok := r.locks[id]
	if !ok {
		l = &sync.Mutex{}
		r.locks[id] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Pod names the pod a container belongs to.
type Pod struct {
	UID, Namespace, Name string
}

// Spec is what the kubelet asks to run.
type Spec struct {
	Pod     Pod
	Name    string
	Attempt int
	Init    bool
	// Image is a normalized reference of an image present in containerd.
	Image string
	// Command and Args as in the container spec: Command replaces the
	// image's entrypoint, Args its cmd.
	Command, Args []string
	// Env entries "NAME=value", after the image's.
	Env        []string
	WorkingDir string
	// NetNS, UTSNS and IPCNS are namespace paths to join; empty means the
	// host's (hostNetwork pods).
	NetNS, UTSNS, IPCNS string
	Mounts              []specs.Mount
	// LogPath is the CRI log file for the container's output.
	LogPath string
	// GracePeriod is the pod's terminationGracePeriodSeconds.
	GracePeriod *int64
	// SpecOpts adjust the OCI spec last (security context, resources).
	SpecOpts []oci.SpecOpts
	// Stdin gives the container a stdin that attached clients write to;
	// with StdinOnce the first client's end of input closes it. TTY runs
	// the container on a terminal.
	Stdin, StdinOnce, TTY bool
}

// State of a container.
type State int

const (
	StateCreated State = iota
	StateRunning
	StateExited
)

func (s State) String() string {
	return [...]string{"created", "running", "exited"}[s]
}

// Status is a container as containerd knows it.
type Status struct {
	ID      string
	Pod     Pod
	Name    string
	Attempt int
	Init    bool
	Image   string
	// ImageID is the image's manifest digest ("sha256:...").
	ImageID    string
	State      State
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int
	// Reason is "Completed" or "Error" for exited containers.
	Reason  string
	LogPath string
	// GracePeriod is the pod's termination grace period when created.
	GracePeriod *int64
}

func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Start creates and starts a container, returning its ID. A container
// whose process cannot be started is removed again.
func (r *Runtime) Start(ctx context.Context, s Spec) (string, error) {
	ctx = r.ns(ctx)
	img, err := r.cfg.Client.GetImage(ctx, s.Image)
	if err != nil {
		return "", fmt.Errorf("containers: image %s: %w", s.Image, err)
	}
	ic, err := img.Spec(ctx)
	if err != nil {
		return "", fmt.Errorf("containers: image config of %s: %w", s.Image, err)
	}
	args := processArgs(ic.Config.Entrypoint, ic.Config.Cmd, s.Command, s.Args)
	if len(args) == 0 {
		return "", fmt.Errorf("containers: no command: image %s has no entrypoint or cmd and the container sets none", s.Image)
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(args...),
		oci.WithEnv(s.Env),
		oci.WithMounts(s.Mounts),
	}
	if s.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(s.WorkingDir))
	}
	if s.TTY {
		opts = append(opts, oci.WithTTY)
	}
	for typ, path := range map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: s.NetNS, specs.UTSNamespace: s.UTSNS, specs.IPCNamespace: s.IPCNS} {
		if path != "" {
			opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: typ, Path: path}))
		} else {
			opts = append(opts, oci.WithHostNamespace(typ))
		}
	}
	opts = append(opts, s.SpecOpts...)

	id := newID()
	labels := map[string]string{
		LabelPodUID:        s.Pod.UID,
		LabelPodName:       s.Pod.Name,
		LabelPodNamespace:  s.Pod.Namespace,
		LabelContainerName: s.Name,
		LabelAttempt:       strconv.Itoa(s.Attempt),
		labelLogPath:       s.LogPath,
	}
	if s.Init {
		labels[LabelInit] = "true"
	}
	if s.GracePeriod != nil {
		labels[LabelGracePeriod] = strconv.FormatInt(*s.GracePeriod, 10)
	}
	for label, set := range map[string]bool{labelStdin: s.Stdin, labelStdinOnce: s.StdinOnce, labelTTY: s.TTY} {
		if set {
			labels[label] = "true"
		}
	}
	c, err := r.cfg.Client.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithSnapshotter(r.cfg.Snapshotter),
		client.WithNewSnapshot(id, img),
		client.WithNewSpec(opts...),
		client.WithContainerLabels(labels),
	)
	if err != nil {
		return "", fmt.Errorf("containers: create %s: %w", s.Name, err)
	}
	unlock := r.lock(id)
	defer unlock()
	if err := r.startTask(ctx, c, s.LogPath, labels); err != nil {
		_ = c.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
		return "", err
	}
	return id, nil
}

// processArgs applies Kubernetes' rules for command and args over the
// image's entrypoint and cmd.
func processArgs(entrypoint, cmd, command, args []string) []string {
	switch {
	case len(command) > 0:
		return append(append([]string{}, command...), args...)
	case len(args) > 0:
		return append(append([]string{}, entrypoint...), args...)
	default:
		return append(append([]string{}, entrypoint...), cmd...)
	}
}

// streams opens the container's log file and returns writers for stdout and
// stderr that close it when both are done.
func (r *Runtime) streams(logPath string) (stdout, stderr *criWriter, closeFn func(), err error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, nil, nil, err
	}
	lf, err := openLogFile(logPath)
	if err != nil {
		return nil, nil, nil, err
	}
	stdout = &criWriter{file: lf, stream: "stdout", now: r.cfg.Now}
	stderr = &criWriter{file: lf, stream: "stderr", now: r.cfg.Now}
	return stdout, stderr, func() { stdout.Close(); stderr.Close(); lf.Close() }, nil
}

// containerIO opens the log of a container and its stdio for attaching,
// and returns the cio options for its task and what closes them.
func (r *Runtime) containerIO(logPath string, labels map[string]string) (*stdio, []cio.Opt, func(), error) {
	stdout, stderr, closeLog, err := r.streams(logPath)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("containers: log: %w", err)
	}
	s, in := newStdio(labels[labelStdin] == "true", labels[labelStdinOnce] == "true", labels[labelTTY] == "true")
	opts := []cio.Opt{cio.WithStreams(in, s.output(stdout, false), s.output(stderr, true)), cio.WithFIFODir(r.cfg.FIFODir)}
	if s.tty {
		opts = append(opts, cio.WithTerminal)
	}
	return s, opts, func() { closeLog(); s.close() }, nil
}

func (r *Runtime) startTask(ctx context.Context, c client.Container, logPath string, labels map[string]string) error {
	s, opts, closeLog, err := r.containerIO(logPath, labels)
	if err != nil {
		return err
	}
	task, err := c.NewTask(ctx, cio.NewCreator(opts...))
	if err != nil {
		closeLog()
		return fmt.Errorf("containers: create task: %w", err)
	}
	s.task = task
	exitc, err := task.Wait(r.ctx)
	if err != nil {
		// Not with ctx: a kubelet stopping mid-start must not leave a
		// task behind whose FIFOs it took with it.
		task.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
		closeLog()
		return fmt.Errorf("containers: wait task: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		task.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
		closeLog()
		return fmt.Errorf("containers: start: %w", err)
	}
	if _, err := c.SetLabels(ctx, map[string]string{LabelStartedAt: r.cfg.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		r.log.Warn("recording the start time", "container", c.ID(), "err", err)
	}
	r.setStdio(c.ID(), s)
	r.watch(c, task, exitc, closeLog)
	return nil
}

// watch finalizes the container when its task exits.
func (r *Runtime) watch(c client.Container, task client.Task, exitc <-chan client.ExitStatus, closeLog func()) {
	r.mu.Lock()
	if r.watched[c.ID()] {
		r.mu.Unlock()
		return
	}
	r.watched[c.ID()] = true
	finalized := make(chan struct{})
	r.finalized[c.ID()] = finalized
	r.mu.Unlock()
	go func() {
		defer func() {
			r.mu.Lock()
			delete(r.watched, c.ID())
			delete(r.finalized, c.ID())
			r.mu.Unlock()
			close(finalized)
		}()
		select {
		case st := <-exitc:
			// Output written just before exit is still in flight.
			if io := task.IO(); io != nil {
				io.Wait()
			}
			closeLog()
			r.setStdio(c.ID(), nil)
			unlock := r.lock(c.ID())
			err := r.finalize(r.ctx, c, task, st.ExitCode(), st.ExitTime())
			unlock()
			if err != nil {
				r.log.Warn("watching a container", "container", c.ID(), "err", err)
			}
			if labels, err := c.Labels(r.ctx); err == nil && labels[LabelPodUID] != "" {
				r.cfg.OnExit(labels[LabelPodUID])
			}
		case <-r.ctx.Done():
			// Let go of the output FIFOs (not removing them), so that a
			// new runtime in this process re-attaches as the only reader.
			if io := task.IO(); io != nil {
				io.Cancel()
			}
			closeLog()
		}
	}()
}

// finalize records how the container ended in its labels and deletes its
// task, so the shim exits. Callers hold the container's lock.
func (r *Runtime) finalize(ctx context.Context, c client.Container, task client.Task, code uint32, at time.Time) error {
	if at.IsZero() {
		at = r.cfg.Now()
	}
	reason := "Completed"
	if code != 0 {
		reason = "Error"
		if r.oomKilled(ctx, c) {
			reason = "OOMKilled"
		}
	}
	if _, err := c.SetLabels(ctx, map[string]string{
		labelExitCode:   strconv.Itoa(int(code)),
		labelFinishedAt: at.UTC().Format(time.RFC3339Nano),
		labelReason:     reason,
	}); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("record exit: %w", err)
	}
	if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete task: %w", err)
	}
	return nil
}

// List returns every container of the node. Containers found running get
// an exit watcher and their log copier back (after a kubelet restart);
// tasks found stopped are finalized.
func (r *Runtime) List(ctx context.Context) ([]Status, error) {
	ctx = r.ns(ctx)
	cs, err := r.cfg.Client.Containers(ctx, fmt.Sprintf("labels.%q", LabelPodUID))
	if err != nil {
		return nil, fmt.Errorf("containers: list: %w", err)
	}
	out := make([]Status, 0, len(cs))
	for _, c := range cs {
		st, err := r.status(ctx, c)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (r *Runtime) status(ctx context.Context, c client.Container) (Status, error) {
	unlock := r.lock(c.ID())
	defer unlock()
	info, err := c.Info(ctx)
	if err != nil {
		return Status{}, err
	}
	st := statusFromInfo(info)
	if _, done := info.Labels[labelExitCode]; done {
		return st, nil
	}
	r.mu.Lock()
	watched := r.watched[c.ID()]
	r.mu.Unlock()
	if watched {
		st.State = StateRunning
		return st, nil
	}
	// A container that an earlier kubelet created but never got running
	// (it stopped mid-start) is discarded: its output FIFOs went with that
	// kubelet, and the pod worker starts the same attempt afresh.
	// Containers of this runtime may be starting right now.
	stale := info.CreatedAt.Before(r.began)
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		if stale {
			return Status{}, r.discard(ctx, c, nil)
		}
		return st, nil // created, not started yet
	}
	if err != nil {
		return Status{}, fmt.Errorf("containers: task of %s: %w", c.ID(), err)
	}
	ts, err := task.Status(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("containers: task status of %s: %w", c.ID(), err)
	}
	if ts.Status == client.Created && stale {
		return Status{}, r.discard(ctx, c, task)
	}
	if ts.Status == client.Stopped {
		if err := r.finalize(ctx, c, task, ts.ExitStatus, ts.ExitTime); err != nil {
			return Status{}, fmt.Errorf("containers: %s: %w", c.ID(), err)
		}
		info, err = c.Info(ctx)
		if err != nil {
			return Status{}, err
		}
		return statusFromInfo(info), nil
	}
	// Running and not watched: this kubelet has just started. Re-attach the
	// log copier and watch for the exit.
	if err := r.adopt(c, info.Labels); err != nil {
		// Its output cannot be collected any more: end it as killed, and
		// the pod's restartPolicy decides what follows.
		r.log.Warn("cannot re-attach the output of a container; killing it", "container", c.ID(), "err", err)
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return Status{}, fmt.Errorf("containers: kill %s: %w", c.ID(), err)
		}
		if _, err := c.SetLabels(ctx, map[string]string{
			labelExitCode:   "137",
			labelFinishedAt: r.cfg.Now().UTC().Format(time.RFC3339Nano),
			labelReason:     "Error",
		}); err != nil {
			return Status{}, fmt.Errorf("containers: record end of %s: %w", c.ID(), err)
		}
		if info, err = c.Info(ctx); err != nil {
			return Status{}, err
		}
		return statusFromInfo(info), nil
	}
	st.State = StateRunning
	return st, nil
}

// discard deletes a container (and its task, if any) that never ran, and
// reports it as not found, so that listings skip it.
func (r *Runtime) discard(ctx context.Context, c client.Container, task client.Task) error {
	r.log.Info("removing a container an earlier kubelet created but never ran", "container", c.ID())
	if task != nil {
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("containers: remove %s: %w", c.ID(), err)
		}
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("containers: remove %s: %w", c.ID(), err)
	}
	return fmt.Errorf("containers: %s: %w", c.ID(), errdefs.ErrNotFound)
}

func (r *Runtime) adopt(c client.Container, labels map[string]string) error {
	s, opts, closeLog, err := r.containerIO(labels[labelLogPath], labels)
	if err != nil {
		return err
	}
	task, err := c.Task(r.ctx, cio.NewAttach(opts...))
	if err != nil {
		closeLog()
		return fmt.Errorf("containers: attach %s: %w", c.ID(), err)
	}
	exitc, err := task.Wait(r.ctx)
	if err != nil {
		closeLog()
		return fmt.Errorf("containers: wait %s: %w", c.ID(), err)
	}
	s.task = task
	r.setStdio(c.ID(), s)
	r.watch(c, task, exitc, closeLog)
	return nil
}

func statusFromInfo(info containers.Container) Status {
	l := info.Labels
	st := Status{
		ID:        info.ID,
		Pod:       Pod{UID: l[LabelPodUID], Namespace: l[LabelPodNamespace], Name: l[LabelPodName]},
		Name:      l[LabelContainerName],
		Init:      l[LabelInit] == "true",
		Image:     info.Image,
		State:     StateCreated,
		CreatedAt: info.CreatedAt,
		LogPath:   l[labelLogPath],
	}
	st.Attempt, _ = strconv.Atoi(l[LabelAttempt])
	if g, err := strconv.ParseInt(l[LabelGracePeriod], 10, 64); err == nil {
		st.GracePeriod = &g
	}
	st.StartedAt, _ = time.Parse(time.RFC3339Nano, l[LabelStartedAt])
	if code, ok := l[labelExitCode]; ok {
		st.State = StateExited
		st.ExitCode, _ = strconv.Atoi(code)
		st.FinishedAt, _ = time.Parse(time.RFC3339Nano, l[labelFinishedAt])
		st.Reason = l[labelReason]
	}
	return st
}

// ImageID returns the manifest digest of an image.
func (r *Runtime) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := r.cfg.Client.GetImage(r.ns(ctx), ref)
	if err != nil {
		return "", err
	}
	return img.Target().Digest.String(), nil
}

// Stop sends SIGTERM to the container's processes, waits up to grace for
// them to exit, then sends SIGKILL. A container that is not running is fine.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ns(ctx)
	c, err := r.cfg.Client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("containers: stop %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("containers: stop %s: %w", id, err)
	}
	exitc, err := task.Wait(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("containers: stop %s: %w", id, err)
	}
	if grace > 0 {
		if err := task.Kill(ctx, syscall.SIGTERM, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("containers: SIGTERM %s: %w", id, err)
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-exitc:
			return r.awaitFinalized(ctx, c, task, exitc, true)
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("containers: SIGKILL %s: %w", id, err)
	}
	return r.awaitFinalized(ctx, c, task, exitc, false)
}

// awaitFinalized waits for the exit and makes sure the container's end is
// recorded even when no watcher runs.
func (r *Runtime) awaitFinalized(ctx context.Context, c client.Container, task client.Task, exitc <-chan client.ExitStatus, exited bool) error {
	var st client.ExitStatus
	if !exited {
		select {
		case st = <-exitc:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	finalized, watched := r.finalized[c.ID()]
	r.mu.Unlock()
	if watched {
		// The watcher records the end: wait for it, so that what follows
		// (a removal, the next status) sees the container stopped.
		select {
		case <-finalized:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	unlock := r.lock(c.ID())
	defer unlock()
	if labels, err := c.Labels(ctx); err == nil {
		if _, done := labels[labelExitCode]; done {
			return nil
		}
	}
	return r.finalize(ctx, c, task, st.ExitCode(), st.ExitTime())
}

// Remove deletes a container and its snapshot, killing it first if it still
// runs. A missing container is fine.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	c, err := r.cfg.Client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("containers: remove %s: %w", id, err)
	}
	// Under the container's lock: its exit watcher may be deleting the
	// task at the same time.
	unlock := r.lock(id)
	if task, err := c.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			unlock()
			return fmt.Errorf("containers: remove task of %s: %w", id, err)
		}
	}
	unlock()
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("containers: remove %s: %w", id, err)
	}
	r.mu.Lock()
	delete(r.locks, id)
	r.mu.Unlock()
	return nil
}

// execTarget returns the running task of container id and a copy of its
// process spec, the base of an exec'd process.
func (r *Runtime) execTarget(ctx context.Context, id string) (client.Task, specs.Process, error) {
	c, err := r.cfg.Client.LoadContainer(ctx, id)
	if err != nil {
		return nil, specs.Process{}, fmt.Errorf("containers: exec in %s: %w", id, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, specs.Process{}, fmt.Errorf("containers: exec in %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, specs.Process{}, fmt.Errorf("containers: exec in %s: %w", id, err)
	}
	return task, *spec.Process, nil
}

// Exec runs cmd in a running container and returns its exit code and
// combined output. It kills the process when ctx ends.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, out io.Writer) (int, error) {
	ctx = r.ns(ctx)
	task, pspec, err := r.execTarget(ctx, id)
	if err != nil {
		return 0, err
	}
	pspec.Args = cmd
	pspec.Terminal = false
	execID := "exec-" + newID()[:16]
	// stdout and stderr are copied by two goroutines into one writer.
	lw := &lockedWriter{w: out}
	proc, err := task.Exec(context.WithoutCancel(ctx), execID, &pspec, cio.NewCreator(cio.WithStreams(nil, lw, lw), cio.WithFIFODir(r.cfg.FIFODir)))
	if err != nil {
		return 0, fmt.Errorf("containers: exec in %s: %w", id, err)
	}
	defer proc.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
	exitc, err := proc.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return 0, fmt.Errorf("containers: exec in %s: %w", id, err)
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("containers: exec in %s: %w", id, err)
	}
	select {
	case st := <-exitc:
		if io := proc.IO(); io != nil {
			io.Wait()
		}
		return int(st.ExitCode()), nil
	case <-ctx.Done():
		_ = proc.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		<-exitc
		return 0, ctx.Err()
	}
}

// ListPod returns the containers of one pod.
func (r *Runtime) ListPod(ctx context.Context, podUID string) ([]Status, error) {
	ctx = r.ns(ctx)
	cs, err := r.cfg.Client.Containers(ctx, fmt.Sprintf("labels.%q==%q", LabelPodUID, podUID))
	if err != nil {
		return nil, fmt.Errorf("containers: list: %w", err)
	}
	out := make([]Status, 0, len(cs))
	for _, c := range cs {
		st, err := r.status(ctx, c)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct{ Width, Height uint16 }

// ExecStream runs cmd in a running container with the given streams (any
// may be nil), optionally on a terminal resized from resize, and returns its
// exit code. End of stdin closes the process's stdin.
func (r *Runtime) ExecStream(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan TerminalSize) (int, error) {
	ctx = r.ns(ctx)
	task, pspec, err := r.execTarget(ctx, id)
	if err != nil {
		return 0, err
	}
	pspec.Args = cmd
	pspec.Terminal = tty
	procReady := make(chan client.Process, 1)
	var in io.Reader
	if stdin != nil {
		// On EOF from the client, close the process's stdin so programs
		// like cat end.
		in = &eofReader{r: stdin, onEOF: func() {
			select {
			case p := <-procReady:
				procReady <- p
				_ = p.CloseIO(context.WithoutCancel(ctx), client.WithStdinCloser)
			case <-ctx.Done():
			}
		}}
	}
	// containerd 1.6's shim cannot start an exec without its output
	// FIFOs ("opening file \"\" failed"): output nobody asked for is
	// discarded instead.
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil && !tty {
		stderr = io.Discard
	}
	opts := []cio.Opt{cio.WithStreams(in, stdout, stderr), cio.WithFIFODir(r.cfg.FIFODir)}
	if tty {
		opts = append(opts, cio.WithTerminal)
	}
	execID := "exec-" + newID()[:16]
	proc, err := task.Exec(context.WithoutCancel(ctx), execID, &pspec, cio.NewCreator(opts...))
	if err != nil {
		return 0, fmt.Errorf("containers: exec in %s: %w", id, err)
	}
	defer proc.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
	exitc, err := proc.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return 0, fmt.Errorf("containers: exec in %s: %w", id, err)
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("containers: exec in %s: %w", id, err)
	}
	procReady <- proc
	for {
		select {
		case st := <-exitc:
			if io := proc.IO(); io != nil {
				io.Wait()
			}
			return int(st.ExitCode()), nil
		case sz, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			_ = proc.Resize(ctx, uint32(sz.Width), uint32(sz.Height))
		case <-ctx.Done():
			_ = proc.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
			<-exitc
			return 0, ctx.Err()
		}
	}
}

type eofReader struct {
	r     io.Reader
	onEOF func()
	once  sync.Once
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(e.onEOF)
	}
	return n, err
}

// oomKilled reports whether the kernel's OOM killer struck in the
// container's cgroup; it must be asked before the task is deleted, which
// removes the cgroup.
func (r *Runtime) oomKilled(ctx context.Context, c client.Container) bool {
	spec, err := c.Spec(ctx)
	if err != nil || spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return false
	}
	cg := spec.Linux.CgroupsPath
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", cg, "memory.oom_control"), // v1
		filepath.Join("/sys/fs/cgroup", cg, "memory.events"),             // v2
	} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok {
				return strings.TrimSpace(n) != "0"
			}
		}
	}
	return false
}
