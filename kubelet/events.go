package kubelet

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	"k8s.io/klog/v2"
)

// Event reasons upstream's kubelet records (pkg/kubelet/events).
const (
	eventPulling             = "Pulling"
	eventPulled              = "Pulled"
	eventFailed              = "Failed"
	eventInspectFailed       = "InspectFailed"
	eventErrImageNeverPull   = "ErrImageNeverPull"
	eventBackOff             = "BackOff"
	eventCreated             = "Created"
	eventStarted             = "Started"
	eventKilling             = "Killing"
	eventUnhealthy           = "Unhealthy"
	eventFailedPostStartHook = "FailedPostStartHook"
	eventFailedPreStopHook   = "FailedPreStopHook"
	eventFailedMount         = "FailedMount"
)

// newRecorder records core/v1 Events as upstream's kubelet: source
// component "kubelet" on host NODE, which client-go also reports as the
// reportingController and reportingInstance.
func newRecorder(nodeName string) (record.EventBroadcaster, record.EventRecorder) {
	b := record.NewBroadcaster()
	return b, b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: nodeName})
}

// nodeRef is the node as upstream's kubelet names it in events: the UID is
// the node's name.
func nodeRef(nodeName string) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", Name: nodeName, UID: types.UID(nodeName)}
}

// containerEvent records an event about one container of pod, with the
// involvedObject's fieldPath naming it (spec.containers{NAME} or
// spec.initContainers{NAME}) as `kubectl describe` shows.
func (k *Kubelet) containerEvent(pod *corev1.Pod, container, eventType, reason, format string, args ...any) {
	if k.recorder == nil || pod == nil {
		return
	}
	path := fmt.Sprintf("spec.containers{%s}", container)
	for _, c := range pod.Spec.InitContainers {
		if c.Name == container {
			path = fmt.Sprintf("spec.initContainers{%s}", container)
		}
	}
	ref, err := reference.GetPartialReference(scheme.Scheme, pod, path)
	if err != nil {
		k.log.Warn("recording an event", "reason", reason, "pod", klog.KObj(pod), "err", err)
		return
	}
	k.recorder.Eventf(ref, eventType, reason, format, args...)
}
