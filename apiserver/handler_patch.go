package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// patchMediaTypes are the patch formats served, in upstream's order.
var patchMediaTypes = []string{
	string(types.JSONPatchType),
	string(types.MergePatchType),
	string(types.StrategicMergePatchType),
	string(types.ApplyYAMLPatchType),
}

// servePatch answers PATCH on one object.
func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	return s.servePatchOn(w, r, t, "")
}

// servePatchOn is PATCH on the object or its status.
func (s *Server) servePatchOn(w http.ResponseWriter, r *http.Request, t requestTarget, subresource string) error {
	patchType := types.PatchType(requestMediaType(r))
	switch patchType {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType:
	default:
		return errUnsupportedMediaType(string(patchType), patchMediaTypes)
	}
	var opts metav1.PatchOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_PatchOptions(&q, &opts, nil); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	dryRun, err := parseDryRun(opts.DryRun)
	if err != nil {
		return err
	}
	if patchType == types.ApplyYAMLPatchType && opts.FieldManager == "" {
		return apierrors.NewBadRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
	}
	patch, err := readBody(r)
	if err != nil {
		return err
	}
	out, created, err := s.updateObject(r.Context(), updateRequest{
		res: t.res, namespace: t.namespace, name: t.name, subresource: subresource, dryRun: dryRun,
		allowCreate: patchType == types.ApplyYAMLPatchType && subresource == "",
		mutate: func(current runtime.Object) (runtime.Object, error) {
			manager := managerName(r, opts.FieldManager)
			if patchType == types.ApplyYAMLPatchType {
				force := opts.Force != nil && *opts.Force
				obj, err := s.serverSideApply(t, subresource, current, patch, manager, force)
				if err == nil && current != nil {
					clearUnchangedResourceVersion(obj, current)
				}
				return obj, err
			}
			obj, err := s.applyPatch(w, r, t, patchType, patch, current)
			if err != nil {
				return nil, err
			}
			return s.trackUpdate(t.res, subresource, current, obj, manager), nil
		},
	})
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return s.respond(w, r, t.res, code, out)
}

// applyPatch computes the patched object from current (nil when an apply
// creates the object).
func (s *Server) applyPatch(w http.ResponseWriter, r *http.Request, t requestTarget, patchType types.PatchType, patch []byte, current runtime.Object) (runtime.Object, error) {
	gvk := t.res.gvk()
	original, err := json.Marshal(current)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	dataStruct, err := s.scheme.New(gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	patched, err := patchJSON(original, patchType, patch, dataStruct)
	if err != nil {
		return nil, err
	}
	obj, err := s.decodeObject(w, r, patched, mediaJSON, gvk)
	if err != nil {
		return nil, err
	}
	clearUnchangedResourceVersion(obj, current)
	return obj, nil
}

// patchJSON applies a JSON, merge or strategic merge patch to the JSON of
// an object; dataStruct (an empty object of its type) carries the
// strategic merge keys. Errors are upstream's: 422 for a JSON patch that
// does not apply, 400 for a malformed patch.
func patchJSON(original []byte, patchType types.PatchType, patch []byte, dataStruct runtime.Object) ([]byte, error) {
	switch patchType {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		patched, err := p.Apply(original)
		if err != nil {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
		}
		return patched, nil
	case types.MergePatchType:
		patched, err := jsonpatch.MergePatch(original, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return patched, nil
	case types.StrategicMergePatchType:
		patched, err := strategicpatch.StrategicMergePatch(original, patch, dataStruct)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return patched, nil
	}
	return nil, apierrors.NewBadRequest(fmt.Sprintf("unsupported patch type %q", patchType))
}

// clearUnchangedResourceVersion: a patch that did not ask for a
// resourceVersion sets no precondition, so a conflicting write is retried
// instead of refused.
func clearUnchangedResourceVersion(obj, current runtime.Object) {
	if accessor(obj).GetResourceVersion() == accessor(current).GetResourceVersion() {
		accessor(obj).SetResourceVersion("")
	}
}
