package replicaset

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// claimPods returns the pods of candidates that rs controls after
// adopting orphans that match its selector and releasing owned pods that
// no longer match, as upstream's ControllerRefManager does.
func (c *Controller) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector, candidates []*corev1.Pod) ([]*corev1.Pod, error) {
	// Adoption re-reads rs from the API once, so a ReplicaSet that was
	// just deleted (or replaced under the same name) adopts nothing.
	canAdopt := sync.OnceValue(func() error {
		fresh, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if fresh.UID != rs.UID {
			return fmt.Errorf("original ReplicaSet %v/%v is gone: got uid %v, wanted %v", rs.Namespace, rs.Name, fresh.UID, rs.UID)
		}
		if fresh.DeletionTimestamp != nil {
			return fmt.Errorf("%v/%v has just been deleted at %v", rs.Namespace, rs.Name, fresh.DeletionTimestamp)
		}
		return nil
	})
	var (
		owned []*corev1.Pod
		errs  []error
	)
	for _, pod := range candidates {
		matches := selector.Matches(labels.Set(pod.Labels))
		if ref := metav1.GetControllerOf(pod); ref != nil {
			if ref.UID != rs.UID {
				continue
			}
			if matches {
				owned = append(owned, pod)
				continue
			}
			if rs.DeletionTimestamp != nil {
				continue
			}
			if err := c.releasePod(ctx, rs, pod); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
				errs = append(errs, err)
			}
			continue
		}
		if !matches || rs.DeletionTimestamp != nil || pod.DeletionTimestamp != nil || pod.Namespace != rs.Namespace {
			continue
		}
		if err := canAdopt(); err != nil {
			errs = append(errs, fmt.Errorf("can't adopt Pod %v/%v (%v): %w", pod.Namespace, pod.Name, pod.UID, err))
			continue
		}
		if err := c.adoptPod(ctx, rs, pod); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		owned = append(owned, pod)
	}
	return owned, utilerrors.NewAggregate(errs)
}

type ownerRefPatch struct {
	Metadata struct {
		OwnerReferences []map[string]any `json:"ownerReferences"`
		UID             types.UID        `json:"uid"`
	} `json:"metadata"`
}

// adoptPod adds rs as controller of pod; the pod's UID in the patch makes
// it fail if the pod was replaced meanwhile.
func (c *Controller) adoptPod(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	var p ownerRefPatch
	p.Metadata.UID = pod.UID
	p.Metadata.OwnerReferences = []map[string]any{{
		"apiVersion":         controllerKind.GroupVersion().String(),
		"kind":               controllerKind.Kind,
		"name":               rs.Name,
		"uid":                rs.UID,
		"controller":         true,
		"blockOwnerDeletion": true,
	}}
	return c.patchPod(ctx, pod, p)
}

// releasePod removes rs's ownerReference from pod.
func (c *Controller) releasePod(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	var p ownerRefPatch
	p.Metadata.UID = pod.UID
	p.Metadata.OwnerReferences = []map[string]any{{"$patch": "delete", "uid": rs.UID}}
	return c.patchPod(ctx, pod, p)
}

func (c *Controller) patchPod(ctx context.Context, pod *corev1.Pod, p ownerRefPatch) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
	return err
}
