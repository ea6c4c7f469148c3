package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tinykube/tinykube/kubelet/containers"
	"github.com/tinykube/tinykube/kubelet/sandbox"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Upstream's crash-loop back-off: 10 s doubling to 5 min, forgotten after
// a container ran for twice the maximum.
// minimumGracePeriod is the shortest time containers get between SIGTERM
// and SIGKILL, as upstream's kubelet.
const minimumGracePeriod = 2 * time.Second

const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
)

type backoffEntry struct {
	delay time.Duration
	// failedAt and lastErr are set for image pulls.
	failedAt time.Time
	lastErr  string
}

// waiting is why a container of the pod is not running, for its status.
type waiting struct {
	reason, message string
}

// syncPod reconciles one pod from full state: the pod as the API has it
// (nil when gone) and its containers and sandbox on the node. It returns
// when to look again (0: on the next event or resync).
func (k *Kubelet) syncPod(ctx context.Context, uid string) (time.Duration, error) {
	if uid == "" {
		return 0, nil
	}
	pod := k.podByUID(uid)
	cs, err := k.runtime.ListPod(ctx, uid)
	if err != nil {
		return 0, err
	}
	if pod == nil {
		k.mu.Lock()
		last := k.deleted[uid]
		k.mu.Unlock()
		if err := k.stopPod(ctx, uid, last, cs, true); err != nil {
			return 0, err
		}
		k.mu.Lock()
		delete(k.deleted, uid)
		k.mu.Unlock()
		return 0, nil
	}
	if pod.DeletionTimestamp != nil {
		return 0, k.killPod(ctx, uid, pod, cs)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Terminal: nothing runs again; free the address.
		return 0, k.stopPod(ctx, uid, pod, cs, false)
	}
	untilDeadline, exceeded := k.activeDeadline(pod)
	if exceeded {
		return 0, k.failPastDeadline(ctx, pod, cs)
	}

	var sb sandbox.Sandbox
	if !pod.Spec.HostNetwork {
		sb, err = k.network.Setup(ctx, sandbox.Pod{UID: uid, Namespace: pod.Namespace, Name: pod.Name}, podHostname(pod), hostPorts(pod))
		if err != nil {
			return 0, err
		}
	}
	if err := k.writePodFiles(pod, sb); err != nil {
		return 0, err
	}
	if err := k.setupVolumes(ctx, pod, sb); err != nil {
		var verr volumeError
		if !errors.As(err, &verr) {
			return 0, err
		}
		// Wait for the ConfigMap or Secret to appear, as upstream does
		// (FailedMount), with the containers in ContainerCreating.
		k.log.Info("waiting for volumes", "pod", klog.KObj(pod), "err", err)
		k.recorder.Eventf(pod, corev1.EventTypeWarning, eventFailedMount, "MountVolume.SetUp failed: %v", err)
		waits := map[string]waiting{}
		for _, c := range pod.Spec.Containers {
			waits[c.Name] = waiting{reason: "ContainerCreating"}
		}
		status := k.podStatus(ctx, pod, sb, latestAttempts(cs), cs, waits, len(pod.Spec.InitContainers) == 0, false)
		if err := k.updateStatus(ctx, pod, status); err != nil {
			return 0, err
		}
		return 2 * time.Second, nil
	}

	latest := latestAttempts(cs)
	waits := map[string]waiting{}
	var requeue time.Duration
	wake := func(d time.Duration) {
		if d > 0 && (requeue == 0 || d < requeue) {
			requeue = d
		}
	}
	wake(untilDeadline)
	started := false // a container may have been created: list again
	// start starts the next attempt of c unless it must wait (back-off,
	// image, config), and notes when to look again and why it waits.
	start := func(c *corev1.Container, last containers.Status, hasLast, init bool) (waiting, error) {
		d, w, err := k.maybeStart(ctx, pod, c, last, hasLast, sb, init)
		if err != nil {
			return waiting{}, err
		}
		wake(d)
		if w.reason != "" {
			waits[c.Name] = w
		}
		started = true
		return w, nil
	}

	// Init containers run one at a time, in order: a regular one to
	// success, a sidecar (restartPolicy Always) until it has started.
	// Sidecars then run beside the app containers, restarted whatever the
	// pod's restartPolicy. Once app containers exist the pod is
	// initialized and regular init containers do not run again.
	initialized := hasAppContainer(pod, latest)
	initDone := true
	failed := false
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st, ok := latest[c.Name]
		if isSidecar(c) {
			if ok && st.State == containers.StateRunning {
				if err := k.killIfUnhealthy(ctx, pod, st); err != nil {
					return 0, err
				}
				if initialized || k.probes.started(uid, c.Name, st.ID) {
					continue
				}
				initDone = false
				break
			}
			w, err := start(c, st, ok, true)
			if err != nil {
				return 0, err
			}
			// Without a startup probe a sidecar counts as started once it
			// runs: the next one may start now. With one, its result
			// wakes the pod.
			if initialized || (w.reason == "" && c.StartupProbe == nil) {
				continue
			}
			initDone = false
			break
		}
		if initialized || (ok && st.State == containers.StateExited && st.ExitCode == 0) {
			continue
		}
		initDone = false
		if ok && st.State != containers.StateExited {
			break // running
		}
		if ok && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			failed = true
			break
		}
		if _, err := start(c, st, ok, true); err != nil {
			return 0, err
		}
		break
	}

	if initDone {
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			st, ok := latest[c.Name]
			if ok && st.State == containers.StateRunning {
				if err := k.killIfUnhealthy(ctx, pod, st); err != nil {
					return 0, err
				}
				continue
			}
			if ok && !shouldRestart(pod.Spec.RestartPolicy, st) {
				continue
			}
			if _, err := start(c, st, ok, false); err != nil {
				return 0, err
			}
		}
	} else {
		for _, c := range pod.Spec.Containers {
			waits[c.Name] = waiting{reason: "PodInitializing"}
		}
	}

	if started {
		if cs, err = k.runtime.ListPod(ctx, uid); err != nil {
			return 0, err
		}
	}
	k.removeOldAttempts(ctx, cs)
	probeIP := sb.IP
	if pod.Spec.HostNetwork {
		probeIP = k.cfg.NodeIP
	}
	k.probes.sync(pod, latestAttempts(cs), probeIP)
	status := k.podStatus(ctx, pod, sb, latestAttempts(cs), cs, waits, initDone, failed)
	if err := k.updateStatus(ctx, pod, status); err != nil {
		return 0, err
	}
	if status.Phase != corev1.PodRunning && status.Phase != corev1.PodPending {
		k.queue.Add(uid) // stop what is left and free the address
	}
	return requeue, nil
}

// Upstream's reason and message for a pod past its activeDeadlineSeconds.
const (
	reasonDeadlineExceeded  = "DeadlineExceeded"
	messageDeadlineExceeded = "Pod was active on the node longer than the specified deadline"
)

// activeDeadline returns how long the pod may still run under its
// activeDeadlineSeconds (counted from its startTime, as upstream), or that
// it is past it.
func (k *Kubelet) activeDeadline(pod *corev1.Pod) (time.Duration, bool) {
	if pod.Spec.ActiveDeadlineSeconds == nil || pod.Status.StartTime == nil {
		return 0, false
	}
	left := pod.Status.StartTime.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second).Sub(k.clock.Now())
	return left, left <= 0
}

// failPastDeadline stops a pod past its activeDeadlineSeconds and marks it
// Failed with reason DeadlineExceeded, as upstream's kubelet.
func (k *Kubelet) failPastDeadline(ctx context.Context, pod *corev1.Pod, cs []containers.Status) error {
	k.recorder.Event(pod, corev1.EventTypeNormal, reasonDeadlineExceeded, messageDeadlineExceeded)
	k.probes.stopPod(string(pod.UID))
	if err := k.stopContainers(ctx, pod, cs, max(terminationGrace(pod, nil), minimumGracePeriod)); err != nil {
		return err
	}
	cs, err := k.runtime.ListPod(ctx, string(pod.UID))
	if err != nil {
		return err
	}
	latest := latestAttempts(cs)
	status := k.podStatus(ctx, pod, sandbox.Sandbox{}, latest, cs, nil, hasAppContainer(pod, latest), false)
	status.Phase = corev1.PodFailed
	status.Reason, status.Message = reasonDeadlineExceeded, messageDeadlineExceeded
	status.PodIP, status.PodIPs = pod.Status.PodIP, pod.Status.PodIPs
	return k.updateStatus(ctx, pod, status)
}

// isSidecar reports whether an init container is a sidecar: one with
// restartPolicy Always, which keeps running beside the app containers.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// hasAppContainer reports whether any app container of the pod was
// created: the pod got past its init containers.
func hasAppContainer(pod *corev1.Pod, latest map[string]containers.Status) bool {
	for _, c := range pod.Spec.Containers {
		if _, ok := latest[c.Name]; ok {
			return true
		}
	}
	return false
}

// killIfUnhealthy kills a running container that failed its liveness or
// startup probe; the next sync restarts it.
func (k *Kubelet) killIfUnhealthy(ctx context.Context, pod *corev1.Pod, st containers.Status) error {
	uid := string(pod.UID)
	failed := k.probes.livenessFailed(uid, st.Name, st.ID)
	if failed == "" {
		return nil
	}
	msg := fmt.Sprintf("Container %s failed %s probe, will be restarted", st.Name, failed)
	k.log.Info(msg, "pod", klog.KObj(pod))
	k.probes.forget(uid, st.Name)
	// The probe's own terminationGracePeriodSeconds wins over the pod's.
	var probeGrace *int64
	if c := podContainer(pod, st.Name); c != nil {
		p := c.LivenessProbe
		if failed == "startup" {
			p = c.StartupProbe
		}
		if p != nil {
			probeGrace = p.TerminationGracePeriodSeconds
		}
	}
	if err := k.killContainer(ctx, pod, st, msg, terminationGrace(pod, probeGrace)); err != nil {
		return err
	}
	k.queue.Add(uid)
	return nil
}

// shouldRestart applies the pod's restartPolicy to an exited container.
func shouldRestart(policy corev1.RestartPolicy, st containers.Status) bool {
	if st.State != containers.StateExited {
		return st.State == containers.StateCreated
	}
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return st.ExitCode != 0
	default:
		return true
	}
}

// maybeStart starts the next attempt of container c unless it is in
// crash-loop back-off or its image is missing. It returns when to retry and
// why the container waits.
func (k *Kubelet) maybeStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, last containers.Status, hasLast bool, sb sandbox.Sandbox, init bool) (time.Duration, waiting, error) {
	uid := string(pod.UID)
	key := uid + "/" + c.Name
	attempt := 0
	if hasLast {
		attempt = last.Attempt + 1
		k.mu.Lock()
		e := k.backoff[key]
		if e != nil && last.State == containers.StateExited {
			ran := last.FinishedAt.Sub(last.StartedAt)
			if ran >= 2*backoffMax {
				delete(k.backoff, key)
				e = nil
			}
		}
		if e != nil && last.State == containers.StateExited {
			until := last.FinishedAt.Add(e.delay)
			if now := k.clock.Now(); now.Before(until) {
				k.mu.Unlock()
				k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventBackOff, "Back-off restarting failed container %s in pod %s", c.Name, podDesc(pod))
				return until.Sub(now), waiting{
					reason:  "CrashLoopBackOff",
					message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", e.delay, c.Name, pod.Name, pod.Namespace, pod.UID),
				}, nil
			}
		}
		if e == nil {
			k.backoff[key] = &backoffEntry{delay: backoffInitial}
		} else {
			e.delay = min(2*e.delay, backoffMax)
		}
		k.mu.Unlock()
	}
	image, w, err := k.ensureImage(ctx, pod, c)
	if err != nil {
		return 0, w, err
	}
	if w.reason != "" {
		k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Error: %s", w.reason)
		if w.reason == "ErrImagePull" || w.reason == "ImagePullBackOff" {
			return time.Second, w, nil
		}
		return 0, w, nil
	}
	spec, w, err := k.containerSpec(ctx, pod, c, image, attempt, sb, init)
	if err != nil {
		return 0, waiting{}, err
	}
	if w.reason != "" {
		k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Error: %s", w.message)
		return 5 * time.Second, w, nil
	}
	id, err := k.runtime.Start(ctx, spec)
	if err != nil {
		k.log.Warn("starting a container", "pod", klog.KObj(pod), "container", c.Name, "err", err)
		k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Error: %v", err)
		return 5 * time.Second, waiting{reason: "CreateContainerError", message: err.Error()}, nil
	}
	k.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventCreated, "Created container: %s", c.Name)
	k.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventStarted, "Started container %s", c.Name)
	w, err = k.runPostStart(ctx, pod, c, id)
	return 0, w, err
}

// latestAttempts maps container name to its newest attempt.
func latestAttempts(cs []containers.Status) map[string]containers.Status {
	m := map[string]containers.Status{}
	for _, c := range cs {
		if prev, ok := m[c.Name]; !ok || c.Attempt > prev.Attempt || (c.Attempt == prev.Attempt && c.CreatedAt.After(prev.CreatedAt)) {
			m[c.Name] = c
		}
	}
	return m
}

// previousAttempts maps container name to the attempt before the newest,
// the source of lastState.
func previousAttempts(cs []containers.Status, latest map[string]containers.Status) map[string]containers.Status {
	m := map[string]containers.Status{}
	for _, c := range cs {
		if c.ID == latest[c.Name].ID {
			continue
		}
		if prev, ok := m[c.Name]; !ok || c.Attempt > prev.Attempt {
			m[c.Name] = c
		}
	}
	return m
}

// removeOldAttempts keeps the newest two attempts of each container (the
// current one and the one lastState and `logs --previous` show).
func (k *Kubelet) removeOldAttempts(ctx context.Context, cs []containers.Status) {
	byName := map[string][]containers.Status{}
	for _, c := range cs {
		byName[c.Name] = append(byName[c.Name], c)
	}
	for _, list := range byName {
		sort.Slice(list, func(i, j int) bool { return list[i].Attempt > list[j].Attempt })
		for _, old := range list[min(len(list), 2):] {
			if old.State == containers.StateRunning {
				continue
			}
			if err := k.runtime.Remove(ctx, old.ID); err != nil {
				k.log.Warn("removing an old container", "id", old.ID, "err", err)
			}
		}
	}
}

// terminationGrace is the grace period for stopping the pod's containers.
func terminationGrace(pod *corev1.Pod, override *int64) time.Duration {
	secs := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
		secs = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod != nil && pod.DeletionGracePeriodSeconds != nil {
		secs = *pod.DeletionGracePeriodSeconds
	}
	if override != nil {
		secs = *override
	}
	if secs < 0 {
		secs = 0
	}
	return time.Duration(secs) * time.Second
}

// killPod stops and removes everything of a pod that is gone or being
// deleted, then completes a graceful deletion.
func (k *Kubelet) killPod(ctx context.Context, uid string, pod *corev1.Pod, cs []containers.Status) error {
	if err := k.stopPod(ctx, uid, pod, cs, true); err != nil {
		return err
	}
	if pod == nil {
		return nil
	}
	// The containers are gone: finish the deletion the user started.
	err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// stopPod stops the pod's running containers (in parallel, each with the
// grace period), tears down its sandbox and, with remove, deletes its
// containers and files.
func (k *Kubelet) stopPod(ctx context.Context, uid string, pod *corev1.Pod, cs []containers.Status, remove bool) error {
	k.probes.stopPod(uid)
	grace := terminationGrace(pod, nil)
	if pod == nil {
		// Gone from the API before we saw its deletion (a restart): the
		// grace period recorded on its containers.
		var longest *int64
		for _, c := range cs {
			if c.GracePeriod != nil && (longest == nil || *c.GracePeriod > *longest) {
				longest = c.GracePeriod
			}
		}
		grace = terminationGrace(nil, longest)
	}
	// Upstream's floor: even a force deletion gets 2 s to stop.
	grace = max(grace, minimumGracePeriod)
	if err := k.stopContainers(ctx, pod, cs, grace); err != nil {
		return err
	}
	if remove {
		for _, c := range cs {
			if err := k.runtime.Remove(ctx, c.ID); err != nil {
				return err
			}
		}
	}
	if err := k.network.Teardown(ctx, uid); err != nil {
		return err
	}
	if remove {
		if err := removePodDir(k.podDir(uid)); err != nil {
			return err
		}
		k.mu.Lock()
		for key := range k.backoff {
			if strings.HasPrefix(key, uid+"/") {
				delete(k.backoff, key)
			}
		}
		delete(k.started, uid)
		delete(k.lastStatus, uid)
		k.mu.Unlock()
	}
	return nil
}

// stopContainers stops the running containers of a pod within grace, as
// upstream terminates a pod: the app containers together, then the
// sidecars one by one in reverse order, each with what is left of the
// grace period (at least the 2 s floor), so that a proxy or log shipper
// outlives the app it serves.
func (k *Kubelet) stopContainers(ctx context.Context, pod *corev1.Pod, cs []containers.Status, grace time.Duration) error {
	deadline := k.clock.Now().Add(grace)
	running := map[string]containers.Status{}
	var apps []containers.Status
	for _, c := range cs {
		if c.State != containers.StateRunning {
			continue
		}
		// Without the pod (deleted while the kubelet was down) the order
		// of sidecars is unknown: they stop with the rest.
		if pod != nil && c.Init {
			running[c.Name] = c
			continue
		}
		apps = append(apps, c)
	}
	stopAll := func(list []containers.Status) error {
		left := max(deadline.Sub(k.clock.Now()), minimumGracePeriod)
		var wg sync.WaitGroup
		errs := make([]error, len(list))
		for i, c := range list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = k.killContainer(ctx, pod, c, "", left)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	if err := stopAll(apps); err != nil {
		return err
	}
	if pod == nil {
		return nil
	}
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		if c, ok := running[pod.Spec.InitContainers[i].Name]; ok {
			if err := stopAll([]containers.Status{c}); err != nil {
				return err
			}
		}
	}
	return nil
}

func podHostname(pod *corev1.Pod) string {
	h := pod.Name
	if pod.Spec.Hostname != "" {
		h = pod.Spec.Hostname
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

func hostPorts(pod *corev1.Pod) []sandbox.PortMapping {
	var out []sandbox.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := strings.ToLower(string(p.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			out = append(out, sandbox.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
		}
	}
	return out
}

// writePodFiles writes the pod's /etc/hosts and /etc/hostname, and its
// /etc/resolv.conf from its DNS policy.
func (k *Kubelet) writePodFiles(pod *corev1.Pod, sb sandbox.Sandbox) error {
	dir := k.podDir(string(pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var ips []netip.Addr
	if sb.IP.IsValid() {
		ips = append(ips, sb.IP)
	}
	hosts, err := podHostsFile(pod, ips, k.cfg.ClusterDomain, nodeHostsFile)
	if err != nil {
		return err
	}
	hostname := podHostname(pod)
	if pod.Spec.HostNetwork {
		// The pod shares the node's UTS namespace and so its name.
		if hostname, err = os.Hostname(); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		"etc-hosts": hosts,
		"hostname":  []byte(hostname + "\n"),
	}
	// resolv.conf is settled once, when the pod's sandbox is made, as
	// upstream: its events are not repeated on every sync.
	resolvPath := filepath.Join(dir, "resolv.conf")
	if _, err := os.Stat(resolvPath); errors.Is(err, os.ErrNotExist) {
		dns, err := k.dns.podDNS(pod)
		if err != nil {
			return err
		}
		files["resolv.conf"] = dns.resolvConf()
	}
	for name, data := range files {
		if err := writeIfChanged(filepath.Join(dir, name), data); err != nil {
			return err
		}
	}
	return nil
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// podMounts are the per-pod files every container gets.
func (k *Kubelet) podMounts(pod *corev1.Pod) []specs.Mount {
	dir := k.podDir(string(pod.UID))
	var ms []specs.Mount
	for _, m := range []struct{ src, dst string }{
		{"etc-hosts", "/etc/hosts"}, {"hostname", "/etc/hostname"}, {"resolv.conf", "/etc/resolv.conf"},
	} {
		ms = append(ms, specs.Mount{Destination: m.dst, Type: "bind", Source: filepath.Join(dir, m.src), Options: []string{"rbind", "rprivate", "rw"}})
	}
	return ms
}

// logPath is where a container attempt's log lives, as upstream lays it
// out: LOG_DIR/NAMESPACE_NAME_UID/CONTAINER/ATTEMPT.log.
func (k *Kubelet) logPath(pod *corev1.Pod, container string, attempt int) string {
	return filepath.Join(k.cfg.LogDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID), container, strconv.Itoa(attempt)+".log")
}

// updateStatus writes status through pods/status when it differs from what
// the API has.
func (k *Kubelet) updateStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) error {
	uid := string(pod.UID)
	k.mu.Lock()
	last, sent := k.lastStatus[uid]
	k.mu.Unlock()
	if statusEqual(pod.Status, status) || (sent && statusEqual(last, status)) {
		return nil
	}
	p := pod.DeepCopy()
	p.Status = status
	_, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		k.queue.Add(string(pod.UID)) // the informer brings the newer pod
		return nil
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	k.mu.Lock()
	k.lastStatus[uid] = status
	k.mu.Unlock()
	return nil
}
