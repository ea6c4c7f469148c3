// Package fake is an in-memory container runtime, image store and pod
// network for the kubelet, so that pod sync is tested without root,
// containerd or CNI. Containers do not run anything: a test decides when
// one exits and with which code, as a process would.
package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/remotes"

	"github.com/tinykube/tinykube/kubelet/containers"
	"github.com/tinykube/tinykube/kubelet/sandbox"
)

// Runtime is an in-memory container runtime and image store. It is safe
// for concurrent use.
type Runtime struct {
	mu         sync.Mutex
	containers map[string]*containers.Status
	images     map[string]bool
	pullErrs   map[string]error
	next       int
	exited     func(podUID string)
	now        func() time.Time
}

// NewRuntime holds the given images.
func NewRuntime(images ...string) *Runtime {
	r := &Runtime{containers: map[string]*containers.Status{}, images: map[string]bool{}, pullErrs: map[string]error{}, now: time.Now}
	for _, i := range images {
		r.images[i] = true
	}
	return r
}

// OnExit sets what is told a pod's UID when one of its containers exits:
// the kubelet's ContainerExited.
func (r *Runtime) OnExit(f func(podUID string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exited = f
}

// FailPulls makes pulls of ref fail with err (nil: succeed again).
func (r *Runtime) FailPulls(ref string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pullErrs[ref] = err
}

// Exit ends the running container id with code, as its process would.
func (r *Runtime) Exit(id string, code int) error {
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok || c.State != containers.StateRunning {
		r.mu.Unlock()
		return fmt.Errorf("fake: container %s is not running", id)
	}
	r.finish(c, code)
	exited, uid := r.exited, c.Pod.UID
	r.mu.Unlock()
	if exited != nil {
		exited(uid)
	}
	return nil
}

func (r *Runtime) finish(c *containers.Status, code int) {
	c.State, c.ExitCode, c.FinishedAt = containers.StateExited, code, r.now()
	c.Reason = "Completed"
	if code != 0 {
		c.Reason = "Error"
	}
}

// Running is the running containers of the pod with uid, by name.
func (r *Runtime) Running(uid string) map[string]containers.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]containers.Status{}
	for _, c := range r.containers {
		if c.Pod.UID == uid && c.State == containers.StateRunning {
			out[c.Name] = *c
		}
	}
	return out
}

// Count is how many containers exist, in any state.
func (r *Runtime) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.containers)
}

func (r *Runtime) Start(_ context.Context, s containers.Spec) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.images[s.Image] {
		return "", fmt.Errorf("fake: image %s is not present", s.Image)
	}
	r.next++
	id := fmt.Sprintf("fake%060d", r.next)
	now := r.now()
	r.containers[id] = &containers.Status{
		ID: id, Pod: s.Pod, Name: s.Name, Attempt: s.Attempt, Init: s.Init,
		Image: s.Image, ImageID: imageID(s.Image), State: containers.StateRunning,
		CreatedAt: now, StartedAt: now, LogPath: s.LogPath, GracePeriod: s.GracePeriod,
	}
	return id, nil
}

func (r *Runtime) ListPod(_ context.Context, podUID string) ([]containers.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []containers.Status
	for _, c := range r.containers {
		if c.Pod.UID == podUID {
			out = append(out, *c)
		}
	}
	return out, nil
}

func (r *Runtime) List(context.Context) ([]containers.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]containers.Status, 0, len(r.containers))
	for _, c := range r.containers {
		out = append(out, *c)
	}
	return out, nil
}

// Stop ends a running container as SIGTERM ends a process that does not
// catch it: exit code 143.
func (r *Runtime) Stop(_ context.Context, id string, _ time.Duration) error {
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok || c.State != containers.StateRunning {
		r.mu.Unlock()
		return nil
	}
	r.finish(c, 143)
	exited, uid := r.exited, c.Pod.UID
	r.mu.Unlock()
	if exited != nil {
		exited(uid)
	}
	return nil
}

func (r *Runtime) Remove(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.containers, id)
	return nil
}

// Exec runs nothing and succeeds, as a probe command that passes.
func (r *Runtime) Exec(_ context.Context, id string, _ []string, _ io.Writer) (int, error) {
	return r.execCode(id)
}

func (r *Runtime) ExecStream(_ context.Context, id string, _ []string, _ io.Reader, _, _ io.Writer, _ bool, _ <-chan containers.TerminalSize) (int, error) {
	return r.execCode(id)
}

func (r *Runtime) execCode(id string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; !ok || c.State != containers.StateRunning {
		return 0, fmt.Errorf("fake: container %s is not running", id)
	}
	return 0, nil
}

func (r *Runtime) Attach(context.Context, string, io.Reader, io.Writer, io.Writer, <-chan containers.TerminalSize) error {
	return errors.New("fake: attach is not supported")
}

func (r *Runtime) ImageID(_ context.Context, ref string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.images[ref] {
		return "", fmt.Errorf("fake: image %s is not present", ref)
	}
	return imageID(ref), nil
}

func imageID(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (r *Runtime) ImagePresent(_ context.Context, ref string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.images[ref], nil
}

// PullImage makes ref present, unless FailPulls said otherwise.
func (r *Runtime) PullImage(_ context.Context, ref string, _ remotes.Resolver) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.pullErrs[ref]; err != nil {
		return 0, err
	}
	r.images[ref] = true
	return 1 << 20, nil
}

func (r *Runtime) RuntimeVersion(context.Context) (string, error) { return "fake://1.0.0", nil }

// Network is an in-memory pod network handing out addresses of a prefix
// in order.
type Network struct {
	mu     sync.Mutex
	prefix netip.Prefix
	last   netip.Addr
	pods   map[string]sandbox.Sandbox
}

// NewNetwork hands out addresses of prefix, from its second on (the
// first is the gateway's).
func NewNetwork(prefix netip.Prefix) *Network {
	return &Network{prefix: prefix.Masked(), last: prefix.Masked().Addr().Next(), pods: map[string]sandbox.Sandbox{}}
}

func (n *Network) Setup(_ context.Context, pod sandbox.Pod, _ string, _ []sandbox.PortMapping) (sandbox.Sandbox, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if sb, ok := n.pods[pod.UID]; ok {
		return sb, nil
	}
	n.last = n.last.Next()
	if !n.prefix.Contains(n.last) {
		return sandbox.Sandbox{}, errors.New("fake: pod network full")
	}
	sb := sandbox.Sandbox{IP: n.last, NetNS: "/fake/netns/" + pod.UID}
	n.pods[pod.UID] = sb
	return sb, nil
}

func (n *Network) Teardown(_ context.Context, uid string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.pods, uid)
	return nil
}

func (n *Network) List() ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	uids := make([]string, 0, len(n.pods))
	for uid := range n.pods {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	return uids, nil
}

func (n *Network) DialLocal(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("fake: no pod network to dial into")
}

// Has reports whether the pod with uid has a sandbox.
func (n *Network) Has(uid string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.pods[uid]
	return ok
}
