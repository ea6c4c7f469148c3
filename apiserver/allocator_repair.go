package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/tinykube/tinykube/storage"
)

// repairAllocations frees allocation keys no Service uses: a crash between
// claiming a value and storing its Service, or a failed update, can leave
// one behind. It runs at start-up, before clients write.
func (s *Server) repairAllocations(ctx context.Context) error {
	servicesRes, _ := s.resources.lookup(coreV1.WithResource("services"))
	kvs, _, err := s.listAll(ctx, storagePrefix(servicesRes, ""))
	if err != nil {
		return fmt.Errorf("apiserver: repairing allocations: %w", err)
	}
	inUse := map[string]bool{}
	for _, kv := range kvs {
		obj, err := s.fromKV(servicesRes, kv)
		if err != nil {
			continue
		}
		svc := obj.(*corev1.Service)
		if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			inUse[ipKey(svc.Spec.ClusterIP)+"\x00"+string(svc.UID)] = true
		}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				inUse[portKey(p.NodePort)+"\x00"+string(svc.UID)] = true
			}
		}
		if hc := svc.Spec.HealthCheckNodePort; hc != 0 {
			inUse[portKey(hc)+"\x00"+string(svc.UID)] = true
		}
	}
	for _, prefix := range []string{serviceIPKeyPrefix, serviceNodePortKeyPrefix} {
		claims, _, err := s.listAll(ctx, prefix)
		if err != nil {
			return fmt.Errorf("apiserver: repairing allocations: %w", err)
		}
		for _, kv := range claims {
			var owner allocationOwner
			_ = json.Unmarshal(kv.Value, &owner)
			if inUse[kv.Key+"\x00"+string(owner.UID)] {
				continue
			}
			if _, err := s.store.Delete(ctx, kv.Key, kv.ModRevision); err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrConflict) {
				return fmt.Errorf("apiserver: freeing %s: %w", kv.Key, err)
			}
		}
	}
	return nil
}
