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
	"k8s.io/apimachinery/pkg/util/mergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
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
			return s.trackUpdate(t.res, subresource, current, obj, manager)
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
// creates the object), with upstream's errors: 400 for a patch that is
// not JSON, 422 with a "patch" cause for a result that is not an object
// of the resource's type (or, with fieldValidation=Strict, has unknown or
// duplicate fields).
func (s *Server) applyPatch(w http.ResponseWriter, r *http.Request, t requestTarget, patchType types.PatchType, patch []byte, current runtime.Object) (runtime.Object, error) {
	validation, err := fieldValidation(r)
	if err != nil {
		return nil, err
	}
	gvk := t.res.GVK()
	obj, err := s.scheme.New(gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var patchStrictErrs []error
	if patchType == types.StrategicMergePatchType {
		patchStrictErrs, err = strategicPatchInto(current, patch, obj, validation)
	} else {
		patchStrictErrs, err = s.jsonPatchInto(current, patchType, patch, gvk, obj, validation)
	}
	if err != nil {
		return nil, err
	}
	if len(patchStrictErrs) > 0 {
		// Only Warn gets here with strict errors: Strict failed above.
		for _, e := range patchStrictErrs {
			addWarning(w, e.Error())
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	clearUnchangedResourceVersion(obj, current)
	return obj, nil
}

// checkPatchSyntax decodes a JSON or merge patch as upstream does before
// applying it, unless fieldValidation is Ignore: 400 when it is not JSON,
// and the duplicate fields it has.
func checkPatchSyntax(patchType types.PatchType, patch []byte, validation string) ([]error, error) {
	if validation == metav1.FieldValidationIgnore {
		return nil, nil
	}
	var into any = &map[string]any{}
	if patchType == types.JSONPatchType {
		into = &[]map[string]any{}
	}
	strictErrs, err := kjson.UnmarshalStrict(patch, into)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
	}
	return strictErrs, nil
}

// jsonPatchInto applies a JSON or merge patch to the JSON of current and
// decodes the result into obj.
func (s *Server) jsonPatchInto(current runtime.Object, patchType types.PatchType, patch []byte, gvk schema.GroupVersionKind, obj runtime.Object, validation string) ([]error, error) {
	strictErrs, err := checkPatchSyntax(patchType, patch, validation)
	if err != nil {
		return nil, err
	}
	original, err := json.Marshal(current)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	patched, err := patchJSON(original, patchType, patch, obj)
	if err != nil {
		return nil, err
	}
	info, _ := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaJSON)
	decoder := info.Serializer
	if validation != metav1.FieldValidationIgnore {
		decoder = info.StrictSerializer
	}
	_, _, err = decoder.Decode(patched, &gvk, obj)
	return patchResultErrors(err, strictErrs, validation, string(patched))
}

// strategicPatchInto is upstream's strategic merge patch: the patch is
// merged into current as maps, and the result converted into obj.
func strategicPatchInto(current runtime.Object, patch []byte, obj runtime.Object, validation string) ([]error, error) {
	original, err := runtime.DefaultUnstructuredConverter.ToUnstructured(current)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	patchMap := map[string]any{}
	var strictErrs []error
	if validation == metav1.FieldValidationIgnore {
		err = kjson.UnmarshalCaseSensitivePreserveInts(patch, &patchMap)
	} else {
		strictErrs, err = kjson.UnmarshalStrict(patch, &patchMap)
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	patched, err := strategicpatch.StrategicMergeMapPatch(original, patchMap, obj)
	if err != nil {
		return nil, strategicMergePatchError(err)
	}
	err = runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(patched, obj, validation != metav1.FieldValidationIgnore)
	return patchResultErrors(err, strictErrs, validation, fmt.Sprintf("%+v", patchMap))
}

// patchResultErrors turns the error of decoding a patch's result into
// upstream's answer: 422 Invalid with a "patch" cause showing shown, and
// with fieldValidation=Strict also for the strict errors of the patch and
// its result; with Warn those are returned to become warnings.
func patchResultErrors(err error, patchStrictErrs []error, validation, shown string) ([]error, error) {
	if err == nil {
		if len(patchStrictErrs) > 0 && validation == metav1.FieldValidationStrict {
			err = runtime.NewStrictDecodingError(patchStrictErrs)
			return nil, errPatchInvalid(shown, err)
		}
		return patchStrictErrs, nil
	}
	strictErr, isStrict := runtime.AsStrictDecodingError(err)
	switch {
	case !isStrict:
		return nil, errPatchInvalid(shown, err)
	case validation == metav1.FieldValidationStrict:
		return nil, errPatchInvalid(shown, runtime.NewStrictDecodingError(append(patchStrictErrs, strictErr.Errors()...)))
	}
	return append(patchStrictErrs, strictErr.Errors()...), nil
}

func errPatchInvalid(shown string, err error) error {
	return apierrors.NewInvalid(schema.GroupKind{}, "", field.ErrorList{field.Invalid(field.NewPath("patch"), shown, err.Error())})
}

// strategicMergePatchError is upstream's interpretStrategicMergePatchError:
// a malformed patch is a 400, one that cannot apply a 422. Upstream
// answers anything else with a 500, though every such error is about the
// patch (a key the type does not have, "$setElementOrder/" with no list
// name): a 400 here, since bad input is never a server error.
func strategicMergePatchError(err error) error {
	switch err {
	case mergepatch.ErrBadJSONDoc, mergepatch.ErrBadPatchFormatForPrimitiveList, mergepatch.ErrBadPatchFormatForRetainKeys,
		mergepatch.ErrBadPatchFormatForSetElementOrderList, mergepatch.ErrUnsupportedStrategicMergePatchFormat:
		return apierrors.NewBadRequest(err.Error())
	case mergepatch.ErrNoListOfLists, mergepatch.ErrPatchContentNotMatchRetainKeys:
		return apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
	}
	return apierrors.NewBadRequest(err.Error())
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
		if err := rootValuesPresent(p); err != nil {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
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

// rootValuesPresent refuses an operation on the whole document ("path":
// "") that needs a value and has none: json-patch dereferences the
// missing value and panics (found by FuzzPatch). Elsewhere a missing
// value is taken as null, as upstream does.
func rootValuesPresent(p jsonpatch.Patch) error {
	for _, op := range p {
		path, err := op.Path()
		if err != nil || path != "" {
			continue
		}
		switch kind := op.Kind(); kind {
		case "add", "replace", "test":
			if _, ok := op["value"]; !ok {
				return fmt.Errorf("%s operation value must be object or array", kind)
			}
		}
	}
	return nil
}

// clearUnchangedResourceVersion: a patch that did not ask for a
// resourceVersion sets no precondition, so a conflicting write is retried
// instead of refused.
func clearUnchangedResourceVersion(obj, current runtime.Object) {
	if accessor(obj).GetResourceVersion() == accessor(current).GetResourceVersion() {
		accessor(obj).SetResourceVersion("")
	}
}
