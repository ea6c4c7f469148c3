package nodenet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The annotations each node publishes on its own Node, as flannel's
// flannel.alpha.coreos.com/backend-type, backend-data and public-ip.
const (
	// AnnotationBackendType is the node's backend: "host-gw" or "vxlan".
	AnnotationBackendType = "tinykube.io/backend-type"
	// AnnotationBackendData is the vxlan backend's JSON BackendData.
	AnnotationBackendData = "tinykube.io/backend-data"
	// AnnotationPublicIP is the address other nodes send VXLAN packets to.
	AnnotationPublicIP = "tinykube.io/public-ip"
)

// BackendData is the value of AnnotationBackendData, spelled as flannel's
// ({"VNI":1,"VtepMAC":"..."}).
type BackendData struct {
	VNI     int    `json:"VNI"`
	VtepMAC string `json:"VtepMAC"`
}

// publish writes this node's annotations when they differ from what it
// should publish: its backend, its address and, for vxlan, its VTEP's MAC.
// It patches only its own Node, and only its own annotations.
func (n *NodeNet) publish(ctx context.Context, self *corev1.Node, vtepMAC net.HardwareAddr) error {
	want := map[string]*string{
		AnnotationBackendType: ptr(string(n.cfg.Backend)),
		AnnotationPublicIP:    ptr(n.cfg.NodeIP.String()),
		AnnotationBackendData: nil, // host-gw has none: remove a stale one
	}
	if vtepMAC != nil {
		data, err := json.Marshal(BackendData{VNI: vxlanVNI, VtepMAC: vtepMAC.String()})
		if err != nil {
			return err
		}
		want[AnnotationBackendData] = ptr(string(data))
	}
	same := true
	for k, v := range want {
		cur, ok := self.Annotations[k]
		if ok != (v != nil) || (v != nil && cur != *v) {
			same = false
		}
	}
	if same {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": want}})
	if err != nil {
		return err
	}
	if _, err := n.cfg.Client.CoreV1().Nodes().Patch(ctx, self.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("publishing node %s annotations: %w", self.Name, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
