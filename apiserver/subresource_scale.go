package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tinykube/tinykube/apiserver/registry/fieldvalidation"
)

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
		obj, err := s.getStored(r.Context(), t.res, t.namespace, t.name)
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
				return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), t.name, fieldvalidation.Invalid("spec.replicas", wanted.Spec.Replicas, "must be greater than or equal to 0"))
			}
			before := current.DeepCopyObject()
			setReplicas(current, wanted.Spec.Replicas)
			accessor(current).SetResourceVersion(wanted.ResourceVersion)
			return s.trackUpdate(t.res, "", before, current, managerName(r, opts.FieldManager))
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
	if patchType != types.JSONPatchType && patchType != types.MergePatchType {
		patchType = types.StrategicMergePatchType
	}
	patched, err := patchJSON(original, patchType, patch, &autoscalingv1.Scale{})
	if err != nil {
		return nil, err
	}
	out := &autoscalingv1.Scale{}
	if err := json.Unmarshal(patched, out); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return out, nil
}
