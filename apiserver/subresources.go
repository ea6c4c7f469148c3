package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// serveSubresource dispatches requests on <object>/<subresource>.
func (s *Server) serveSubresource(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	if t.name == "" {
		return errNotFoundPath(r)
	}
	switch t.subresource {
	case "status":
		switch r.Method {
		case http.MethodGet:
			return s.serveGet(w, r, t)
		case http.MethodPut:
			return s.serveReplace(w, r, t, "status")
		case http.MethodPatch:
			return s.servePatchOn(w, r, t, "status")
		}
	case "scale":
		switch r.Method {
		case http.MethodGet, http.MethodPut, http.MethodPatch:
			return s.serveScale(w, r, t)
		}
	case "binding":
		if r.Method == http.MethodPost {
			return s.serveBinding(w, r, t)
		}
	case "eviction":
		if r.Method == http.MethodPost {
			return s.serveEviction(w, r, t)
		}
	case "finalize":
		if r.Method == http.MethodPut {
			return s.serveFinalize(w, r, t)
		}
	case "log", "exec", "attach", "portforward":
		return s.servePodStream(w, r, t)
	default:
		return apierrors.NewServiceUnavailable(fmt.Sprintf("%s/%s is not served yet", t.res.gvr.Resource, t.subresource))
	}
	return errMethodNotSupported(r)
}

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// toScale describes a workload as an autoscaling/v1 Scale.
func toScale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	var replicas, statusReplicas int32
	var selector *metav1.LabelSelector
	switch o := obj.(type) {
	case *appsv1.Deployment:
		replicas, statusReplicas, selector = ptrValue(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *appsv1.ReplicaSet:
		replicas, statusReplicas, selector = ptrValue(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *appsv1.StatefulSet:
		replicas, statusReplicas, selector = ptrValue(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	default:
		return nil, fmt.Errorf("%T has no scale", obj)
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil, err
	}
	m := accessor(obj)
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp(),
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: replicas},
		Status: autoscalingv1.ScaleStatus{Replicas: statusReplicas, Selector: sel.String()},
	}, nil
}

func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	case *appsv1.StatefulSet:
		o.Spec.Replicas = &n
	}
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// serveScale serves GET, PUT and PATCH of <workload>/scale. A Scale's
// resourceVersion is the workload's, so a stale one gets 409.
func (s *Server) serveScale(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	format, err := negotiate(r)
	if err != nil {
		return err
	}
	if r.Method == http.MethodGet {
		obj, err := s.getObject(r, t.res, t.namespace, t.name)
		if err != nil {
			return err
		}
		scale, err := toScale(obj)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		s.encode(w, http.StatusOK, format.mediaType, scale)
		return nil
	}
	var opts metav1.UpdateOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_UpdateOptions(&q, &opts, nil); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	dryRun, err := parseDryRun(opts.DryRun)
	if err != nil {
		return err
	}
	var body []byte
	var patchType types.PatchType
	if r.Method == http.MethodPatch {
		patchType = types.PatchType(requestMediaType(r))
		switch patchType {
		case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
		default:
			return errUnsupportedMediaType(string(patchType), patchMediaTypes[:3])
		}
		if body, err = readBody(r); err != nil {
			return err
		}
	}
	var desiredScale runtime.Object
	if r.Method == http.MethodPut {
		if desiredScale, err = s.readObject(w, r, scaleGVK); err != nil {
			return err
		}
	}
	out, _, err := s.updateObject(r.Context(), updateRequest{
		res: t.res, namespace: t.namespace, name: t.name, dryRun: dryRun,
		mutate: func(current runtime.Object) (runtime.Object, error) {
			scale, err := toScale(current)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			var wanted *autoscalingv1.Scale
			if desiredScale != nil {
				wanted = desiredScale.(*autoscalingv1.Scale)
			} else {
				if wanted, err = patchScale(scale, patchType, body); err != nil {
					return nil, err
				}
				if wanted.ResourceVersion == scale.ResourceVersion {
					wanted.ResourceVersion = ""
				}
			}
			if wanted.Name != "" && wanted.Name != t.name {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", wanted.Name, t.name))
			}
			if wanted.Spec.Replicas < 0 {
				return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), t.name, fieldErrors("spec.replicas", wanted.Spec.Replicas, "must be greater than or equal to 0"))
			}
			before := current.DeepCopyObject()
			setReplicas(current, wanted.Spec.Replicas)
			accessor(current).SetResourceVersion(wanted.ResourceVersion)
			return s.trackUpdate(t.res, "", before, current, managerName(r, opts.FieldManager)), nil
		},
	})
	if err != nil {
		return err
	}
	scale, err := toScale(out)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	s.encode(w, http.StatusOK, format.mediaType, scale)
	return nil
}

func patchScale(scale *autoscalingv1.Scale, patchType types.PatchType, patch []byte) (*autoscalingv1.Scale, error) {
	original, err := json.Marshal(scale)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var patched []byte
	switch patchType {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if patched, err = p.Apply(original); err != nil {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
		}
	case types.MergePatchType:
		if patched, err = jsonpatch.MergePatch(original, patch); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	default:
		if patched, err = strategicpatch.StrategicMergePatch(original, patch, &autoscalingv1.Scale{}); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	}
	out := &autoscalingv1.Scale{}
	if err := json.Unmarshal(patched, out); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return out, nil
}

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
	return s.bindPod(w, r, t.namespace, binding)
}

// serveLegacyBinding is POST namespaces/<ns>/bindings.
func (s *Server) serveLegacyBinding(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	obj, err := s.readObject(w, r, coreV1.WithKind("Binding"))
	if err != nil {
		return err
	}
	return s.bindPod(w, r, t.namespace, obj.(*corev1.Binding))
}

func (s *Server) bindPod(w http.ResponseWriter, r *http.Request, namespace string, binding *corev1.Binding) error {
	pods, _ := s.resources.lookup(coreV1.WithResource("pods"))
	if binding.Target.Kind != "" && binding.Target.Kind != "Node" {
		return apierrors.NewInvalid(coreV1.WithKind("Binding").GroupKind(), binding.Name,
			fieldErrors("target.kind", binding.Target.Kind, "must be empty or 'Node'"))
	}
	if binding.Target.Name == "" {
		return apierrors.NewInvalid(coreV1.WithKind("Binding").GroupKind(), binding.Name,
			requiredError("target.name"))
	}
	_, _, err := s.updateObject(r.Context(), updateRequest{
		res: pods, namespace: namespace, name: binding.Name, subresource: "binding",
		mutate: func(current runtime.Object) (runtime.Object, error) {
			pod := current.(*corev1.Pod)
			if pod.DeletionTimestamp != nil {
				return nil, apierrors.NewConflict(pods.groupResource(), pod.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
			}
			if pod.Spec.NodeName != "" {
				return nil, apierrors.NewConflict(pods.groupResource(), pod.Name, fmt.Errorf("pod %s is already assigned to node %q", pod.Name, pod.Spec.NodeName))
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
	if err != nil {
		return err
	}
	s.encode(w, http.StatusCreated, mediaJSON, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated,
	})
	return nil
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

// serveEviction deletes a pod through the eviction API. There are no
// PodDisruptionBudgets yet, so every eviction is allowed.
func (s *Server) serveEviction(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	obj, err := s.readObject(w, r, policyv1.SchemeGroupVersion.WithKind("Eviction"))
	if err != nil {
		return err
	}
	eviction := obj.(*policyv1.Eviction)
	if eviction.Name != "" && eviction.Name != t.name {
		return apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in Eviction object"))
	}
	opts := metav1.DeleteOptions{}
	if eviction.DeleteOptions != nil {
		opts = *eviction.DeleteOptions
	}
	if _, _, err := s.deleteObject(r.Context(), t.res, t.namespace, t.name, opts); err != nil {
		return err
	}
	s.encode(w, http.StatusCreated, mediaJSON, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated,
	})
	return nil
}

// serveFinalize replaces a namespace's spec.finalizers (PUT
// namespaces/<name>/finalize), which the namespace controller calls once
// the namespace is empty.
func (s *Server) serveFinalize(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	obj, err := s.readObject(w, r, t.res.gvk())
	if err != nil {
		return err
	}
	wanted := obj.(*corev1.Namespace)
	out, _, err := s.updateObject(r.Context(), updateRequest{
		res: t.res, name: t.name, subresource: "finalize",
		mutate: func(current runtime.Object) (runtime.Object, error) {
			ns := current.(*corev1.Namespace)
			ns.Spec.Finalizers = wanted.Spec.Finalizers
			ns.ResourceVersion = wanted.ResourceVersion
			return ns, nil
		},
	})
	if err != nil {
		return err
	}
	return s.respond(w, r, t.res, http.StatusOK, out)
}
