package kubelet

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
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
