package kubelet

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/tinykube/tinykube/kubelet/containers"
	"github.com/tinykube/tinykube/kubelet/sandbox"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// podStatus computes the pod's status from its containers, as upstream's
// kubelet does.
func (k *Kubelet) podStatus(ctx context.Context, pod *corev1.Pod, sb sandbox.Sandbox, latest map[string]containers.Status, all []containers.Status, waits map[string]waiting, initDone, initFailed bool) corev1.PodStatus {
	prev := previousAttempts(all, latest)
	s := corev1.PodStatus{
		QOSClass:                   pod.Status.QOSClass,
		NominatedNodeName:          pod.Status.NominatedNodeName,
		HostIP:                     k.cfg.NodeIP.String(),
		HostIPs:                    []corev1.HostIP{{IP: k.cfg.NodeIP.String()}},
		StartTime:                  pod.Status.StartTime,
		ObservedGeneration:         pod.Generation,
		Resize:                     pod.Status.Resize,
		ResourceClaimStatuses:      pod.Status.ResourceClaimStatuses,
		EphemeralContainerStatuses: pod.Status.EphemeralContainerStatuses,
	}
	if s.StartTime == nil {
		s.StartTime = ptr.To(mtime(k.clock.Now()))
	}
	ip := sb.IP
	if pod.Spec.HostNetwork {
		ip = k.cfg.NodeIP
	}
	if ip.IsValid() {
		s.PodIP = ip.String()
		s.PodIPs = []corev1.PodIP{{IP: ip.String()}}
	}

	allReady := true
	var notReady []string
	for _, c := range pod.Spec.InitContainers {
		st := k.containerStatus(ctx, pod, c, latest, prev, waits, true)
		s.InitContainerStatuses = append(s.InitContainerStatuses, st)
		// Sidecars' readiness counts toward the pod's, as upstream.
		if isSidecar(&c) && !st.Ready {
			allReady = false
			notReady = append(notReady, st.Name)
		}
	}
	var running, waitingN, succeeded, failed, stopped int
	for _, c := range pod.Spec.Containers {
		st := k.containerStatus(ctx, pod, c, latest, prev, waits, false)
		s.ContainerStatuses = append(s.ContainerStatuses, st)
		if !st.Ready {
			allReady = false
		}
		switch {
		case st.State.Running != nil:
			running++
		case st.State.Terminated != nil:
			stopped++
			if st.State.Terminated.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		case st.State.Waiting != nil && st.LastTerminationState.Terminated != nil:
			// Crash looping: it ran, and will run again.
			stopped++
			if st.LastTerminationState.Terminated.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		default:
			waitingN++
		}
	}

	// Phase, as upstream's getPhase.
	switch {
	case initFailed:
		s.Phase = corev1.PodFailed
	case !initDone:
		s.Phase = corev1.PodPending
	case waitingN > 0:
		s.Phase = corev1.PodPending
	case running > 0:
		s.Phase = corev1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			s.Phase = corev1.PodRunning
		case stopped == succeeded:
			s.Phase = corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			s.Phase = corev1.PodFailed
		default:
			s.Phase = corev1.PodRunning
		}
	default:
		s.Phase = corev1.PodPending
	}

	now := mtime(k.clock.Now())
	cond := func(t corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, LastTransitionTime: now, ObservedGeneration: pod.Generation}
		if ok {
			c.Status = corev1.ConditionTrue
		} else {
			c.Reason, c.Message = reason, message
		}
		for _, p := range pod.Status.Conditions {
			if p.Type == t && p.Status == c.Status {
				c.LastTransitionTime = p.LastTransitionTime
			}
		}
		return c
	}
	for _, st := range s.ContainerStatuses {
		if !st.Ready {
			notReady = append(notReady, st.Name)
		}
	}
	notReadyMsg := "containers with unready status: [" + strings.Join(notReady, " ") + "]"
	terminal := s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed
	containersReady := allReady && initDone && !terminal
	reason := "ContainersNotReady"
	if terminal {
		reason = "PodCompleted"
	}
	initReason := "ContainersNotInitialized"
	var initPending []string
	for i, st := range s.InitContainerStatuses {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			if st.Started == nil || !*st.Started {
				initPending = append(initPending, st.Name)
			}
			continue
		}
		if st.State.Terminated == nil || st.State.Terminated.ExitCode != 0 {
			initPending = append(initPending, st.Name)
		}
	}
	s.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, sb.IP.IsValid() || pod.Spec.HostNetwork, "", ""),
		cond(corev1.PodInitialized, initDone, initReason, "containers with incomplete status: ["+strings.Join(initPending, " ")+"]"),
		cond(corev1.PodReady, containersReady && readinessGatesPass(pod), reason, notReadyMsg),
		cond(corev1.ContainersReady, containersReady, reason, notReadyMsg),
	}
	scheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now, ObservedGeneration: pod.Generation}
	for _, p := range pod.Status.Conditions {
		if p.Type == corev1.PodScheduled {
			scheduled = p
		}
	}
	s.Conditions = append(s.Conditions, scheduled)
	// Conditions other components own (readiness gates, DisruptionTarget).
	for _, p := range pod.Status.Conditions {
		switch p.Type {
		case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled:
		default:
			s.Conditions = append(s.Conditions, p)
		}
	}
	return s
}

func readinessGatesPass(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.ReadinessGates {
		ok := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (k *Kubelet) containerStatus(ctx context.Context, pod *corev1.Pod, c corev1.Container, latest, prev map[string]containers.Status, waits map[string]waiting, init bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: ptr.To(false)}
	if ref, err := normalizeImage(c.Image); err == nil {
		cs.Image = ref
	}
	st, ok := latest[c.Name]
	if ok {
		cs.RestartCount = int32(st.Attempt)
		cs.ContainerID = "containerd://" + st.ID
		if id, err := k.runtime.ImageID(ctx, st.Image); err == nil {
			cs.ImageID = imageIDRef(st.Image, id)
		}
		switch st.State {
		case containers.StateRunning:
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: mtime(st.StartedAt)}
			cs.Started = ptr.To(k.probes.started(string(pod.UID), c.Name, st.ID))
			cs.Ready = *cs.Started && k.probes.ready(string(pod.UID), c.Name, st.ID, c.ReadinessProbe != nil)
		case containers.StateExited:
			cs.State.Terminated = terminatedState(st)
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		if init && !isSidecar(&c) && st.State == containers.StateExited && st.ExitCode == 0 {
			cs.Ready = true
		}
	}
	if w, isWaiting := waits[c.Name]; isWaiting {
		if cs.State.Terminated != nil {
			cs.LastTerminationState.Terminated = cs.State.Terminated
			cs.State.Terminated = nil
			cs.ContainerID = "containerd://" + st.ID
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
	} else if !ok {
		// Nothing created yet.
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	if p, ok := prev[c.Name]; ok && cs.LastTerminationState.Terminated == nil && p.State == containers.StateExited {
		cs.LastTerminationState.Terminated = terminatedState(p)
	}
	return cs
}

func terminatedState(st containers.Status) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode:    int32(st.ExitCode),
		Reason:      st.Reason,
		StartedAt:   mtime(st.StartedAt),
		FinishedAt:  mtime(st.FinishedAt),
		ContainerID: "containerd://" + st.ID,
	}
}

// imageIDRef is upstream's imageID form: "REPO@sha256:...".
func imageIDRef(ref, digest string) string {
	repo := ref
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo + "@" + digest
}

// statusEqual compares statuses ignoring nothing: timestamps come from the
// previous status when unchanged, so equal state means equal objects.
func statusEqual(a, b corev1.PodStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

var _ = netip.Addr{}

// mtime is t as the API stores it: whole seconds.
func mtime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.Truncate(time.Second))
}
