package apiserver

import (
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/fieldvalidation"
)

// serveBinding binds a pod to a node (POST pods/<name>/binding), as the
// scheduler does.
func (s *Server) serveBinding(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	obj, err := s.readObject(w, r, coreV1.WithKind("Binding"))
	if err != nil {
		return err
	}
	binding := obj.(*corev1.Binding)
	if binding.Name == "" {
		binding.Name = t.name
	}
	if binding.Name != t.name {
		return apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in Binding object"))
	}
	if err := s.bindPod(r, t.namespace, binding); err != nil {
		return err
	}
	s.encode(w, http.StatusCreated, mediaJSON, createdStatus())
	return nil
}

// createLegacyBinding is POST namespaces/<ns>/bindings.
func (s *Server) createLegacyBinding(r *http.Request, namespace string, obj runtime.Object) (runtime.Object, error) {
	if err := s.bindPod(r, namespace, obj.(*corev1.Binding)); err != nil {
		return nil, err
	}
	return createdStatus(), nil
}

// createdStatus is upstream's answer to a successful binding or eviction.
func createdStatus() *metav1.Status {
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated,
	}
}

// bindPod sets the pod's node and its PodScheduled condition; 409 when the
// pod is already bound or being deleted, or when the binding's uid or
// resourceVersion (preconditions, as upstream) do not match the pod's.
func (s *Server) bindPod(r *http.Request, namespace string, binding *corev1.Binding) error {
	pods, _ := s.resources.lookup(coreV1.WithResource("pods"))
	if binding.Target.Kind != "" && binding.Target.Kind != "Node" {
		return apierrors.NewInvalid(coreV1.WithKind("Binding").GroupKind(), binding.Name,
			fieldvalidation.Invalid("target.kind", binding.Target.Kind, "must be empty or 'Node'"))
	}
	if binding.Target.Name == "" {
		return apierrors.NewInvalid(coreV1.WithKind("Binding").GroupKind(), binding.Name,
			fieldvalidation.Required("target.name"))
	}
	_, _, err := s.updateObject(r.Context(), updateRequest{
		res: pods, namespace: namespace, name: binding.Name, subresource: "binding",
		mutate: func(current runtime.Object) (runtime.Object, error) {
			pod := current.(*corev1.Pod)
			if err := bindingPreconditions(pods, namespace, binding, pod); err != nil {
				return nil, err
			}
			if pod.DeletionTimestamp != nil {
				return nil, apierrors.NewConflict(pods.GroupResource(), pod.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
			}
			if pod.Spec.NodeName != "" {
				return nil, apierrors.NewConflict(pods.GroupResource(), pod.Name, fmt.Errorf("pod %s is already assigned to node %q", pod.Name, pod.Spec.NodeName))
			}
			pod.Spec.NodeName = binding.Target.Name
			for k, v := range binding.Annotations {
				if pod.Annotations == nil {
					pod.Annotations = map[string]string{}
				}
				pod.Annotations[k] = v
			}
			setPodCondition(pod, corev1.PodCondition{
				Type: corev1.PodScheduled, Status: corev1.ConditionTrue,
				LastTransitionTime: metav1.NewTime(s.now()), ObservedGeneration: pod.Generation,
			})
			pod.ResourceVersion = ""
			return pod, nil
		},
	})
	return err
}

// bindingPreconditions checks the binding's uid and resourceVersion, when
// set, against the pod's, with the message upstream's storage layer gives
// (its key is ours).
func bindingPreconditions(pods *registry.Resource, namespace string, binding *corev1.Binding, pod *corev1.Pod) error {
	var msg string
	switch {
	case binding.UID != "" && binding.UID != pod.UID:
		msg = fmt.Sprintf("Precondition failed: UID in precondition: %v, UID in object meta: %v", binding.UID, pod.UID)
	case binding.ResourceVersion != "" && binding.ResourceVersion != pod.ResourceVersion:
		msg = fmt.Sprintf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", binding.ResourceVersion, pod.ResourceVersion)
	default:
		return nil
	}
	return apierrors.NewConflict(pods.GroupResource(), pod.Name, fmt.Errorf(
		"StorageError: invalid object, Code: 4, Key: %s, ResourceVersion: 0, AdditionalErrorMsg: %s", storageKey(pods, namespace, pod.Name), msg))
}

func setPodCondition(pod *corev1.Pod, c corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == c.Type {
			if pod.Status.Conditions[i].Status == c.Status {
				c.LastTransitionTime = pod.Status.Conditions[i].LastTransitionTime
			}
			pod.Status.Conditions[i] = c
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}
