package apiserver

import (
	"bytes"
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/storage"
)

// storePodLister answers the Node authorizer's "which pods of this
// namespace run on this node" from the store.
type storePodLister struct{ s *Server }

// PodsOnNode implements authz.PodLister.
func (l storePodLister) PodsOnNode(ctx context.Context, namespace, node string) ([]*corev1.Pod, error) {
	res, ok := l.s.resources.lookup(coreV1.WithResource("pods"))
	if !ok {
		return nil, nil
	}
	// Pods of other nodes are skipped before they are decoded.
	needle := []byte(`"nodeName":` + strconv.Quote(node))
	var pods []*corev1.Pod
	opts := storage.ListOptions{}
	for {
		page, err := l.s.store.List(ctx, storagePrefix(res, namespace), opts)
		if err != nil {
			return nil, err
		}
		for _, kv := range page.KVs {
			if !bytes.Contains(kv.Value, needle) {
				continue
			}
			obj, err := l.s.fromKV(res, kv)
			if err != nil {
				continue
			}
			if pod := obj.(*corev1.Pod); pod.Spec.NodeName == node {
				pods = append(pods, pod)
			}
		}
		if page.Continue == "" {
			return pods, nil
		}
		opts = storage.ListOptions{Continue: page.Continue}
	}
}
