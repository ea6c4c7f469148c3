package kubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tinykube/tinykube/kubelet/containers"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// reasonPostStartHookError is upstream's: the waiting reason of a container whose
// postStart hook failed.
const reasonPostStartHookError = "PostStartHookError"

// runHook runs a lifecycle handler against a running container and, when
// it fails, returns upstream's message for it. Exec and httpGet are run,
// sleep waits; tcpSocket is not a lifecycle action upstream (the field is
// only kept for compatibility) and fails.
func (k *Kubelet) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, containerID string, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		var out bytes.Buffer
		code, err := k.runtime.Exec(ctx, containerID, h.Exec.Command, &out)
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out.String())
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, c.Name, podDesc(pod), err, out.String()), err
		}
		return "", nil
	case h.HTTPGet != nil:
		ip, _ := netip.ParseAddr(pod.Status.PodIP)
		if pod.Spec.HostNetwork {
			ip = k.cfg.NodeIP
		}
		// Upstream's lifecycle HTTP handler fails only when the request
		// does, whatever the status code.
		if _, err := doHTTPGet(ctx, h.HTTPGet, c, ip, "kube-lifecycle/1.37"); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, c.Name, podDesc(pod), err), err
		}
		return "", nil
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
			err := ctx.Err()
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v", h.Sleep.Seconds, c.Name, podDesc(pod), err), err
		case <-k.clock.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return "", nil
	}
	err := fmt.Errorf("invalid handler: %v", h)
	return fmt.Sprintf("Cannot run handler: %v", err), err
}

// runPostStart runs the container's postStart hook, if any, right after it
// started; the container does not count as running until the hook
// returns. A failing hook kills the container, as upstream: the pod's
// restartPolicy decides what follows.
func (k *Kubelet) runPostStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string) (waiting, error) {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return waiting{}, nil
	}
	hctx, cancel := context.WithCancel(ctx)
	uid := string(pod.UID)
	k.mu.Lock()
	k.postStart[uid] = cancel
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		delete(k.postStart, uid)
		k.mu.Unlock()
		cancel()
	}()
	msg, err := k.runHook(hctx, pod, c, id, c.Lifecycle.PostStart)
	if err == nil {
		return waiting{}, nil
	}
	if hctx.Err() != nil && ctx.Err() == nil {
		// The pod is being deleted: its next sync stops the container
		// within the grace period; a hook (which may wait forever) must
		// not hold that up.
		return waiting{}, nil
	}
	k.log.Info("PostStartHook failed", "pod", klog.KObj(pod), "container", c.Name, "message", msg)
	// The message stays out of the event: it may hold secrets.
	k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailedPostStartHook, "PostStartHook failed")
	st := containers.Status{ID: id, Name: c.Name}
	if err := k.killContainer(ctx, pod, st, "FailedPostStartHook", terminationGrace(pod, nil)); err != nil {
		return waiting{}, err
	}
	return waiting{reason: reasonPostStartHookError, message: msg}, nil
}

// cancelHooks ends the postStart hooks running for a pod that is being
// deleted, as upstream's pod workers cancel a sync when a pod terminates.
func (k *Kubelet) cancelHooks(uid string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if cancel := k.postStart[uid]; cancel != nil {
		cancel()
	}
}

// killContainer stops a running container, as upstream's killContainer:
// a Killing event (message, or "Stopping container NAME"), the preStop
// hook within the grace period, then SIGTERM and SIGKILL.
func (k *Kubelet) killContainer(ctx context.Context, pod *corev1.Pod, st containers.Status, message string, grace time.Duration) error {
	if message == "" {
		message = "Stopping container " + st.Name
	}
	k.containerEvent(pod, st.Name, corev1.EventTypeNormal, eventKilling, "%s", message)
	return k.runtime.Stop(ctx, st.ID, k.runPreStop(ctx, pod, st, grace))
}

// runPreStop runs the container's preStop hook, bounded by the grace
// period, and returns what is left of the grace period for SIGTERM to
// SIGKILL (at least upstream's 2 s).
func (k *Kubelet) runPreStop(ctx context.Context, pod *corev1.Pod, st containers.Status, grace time.Duration) time.Duration {
	c := podContainer(pod, st.Name)
	if c == nil || c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return grace
	}
	start := k.clock.Now()
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if msg, err := k.runHook(hctx, pod, c, st.ID, c.Lifecycle.PreStop); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		k.log.Info("PreStopHook failed", "pod", klog.KObj(pod), "container", st.Name, "message", msg)
		k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailedPreStopHook, "PreStopHook failed")
	}
	return max(grace-k.clock.Since(start), minimumGracePeriod)
}

// podContainer is the pod's container or init container name, or nil.
func podContainer(pod *corev1.Pod, name string) *corev1.Container {
	if pod == nil {
		return nil
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}
