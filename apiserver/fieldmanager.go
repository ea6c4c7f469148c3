package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/yaml"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/storage"
)

// fieldManagers builds, on first use, one apimachinery FieldManager per
// resource and subresource: it tracks metadata.managedFields on every write
// and merges server-side apply patches. Building the type converter parses
// the schema of every built-in type, so it is deferred until the first
// write rather than slowing start-up.
type fieldManagers struct {
	scheme *runtime.Scheme

	once      sync.Once
	converter managedfields.TypeConverter

	mu     sync.Mutex
	byKind map[fieldManagerKey]*managedfields.FieldManager
}

type fieldManagerKey struct {
	gvk         schema.GroupVersionKind
	subresource string
}

func newFieldManagers(scheme *runtime.Scheme) *fieldManagers {
	return &fieldManagers{scheme: scheme, byKind: map[fieldManagerKey]*managedfields.FieldManager{}}
}

// forResource returns the FieldManager of res (subresource "" or
// "status"). Status is reset on the main resource and spec on /status, as
// upstream strategies' GetResetFields say.
func (f *fieldManagers) forResource(res *registry.Resource, subresource string) (*managedfields.FieldManager, error) {
	f.once.Do(func() { f.converter = applyconfigurations.NewTypeConverter(f.scheme) })
	key := fieldManagerKey{gvk: res.GVK(), subresource: subresource}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fm, ok := f.byKind[key]; ok {
		return fm, nil
	}
	var reset map[fieldpath.APIVersion]fieldpath.Filter
	version := fieldpath.APIVersion(res.GVR.GroupVersion().String())
	switch {
	case subresource == "status":
		paths := []fieldpath.Path{fieldpath.MakePathOrDie("spec")}
		for _, name := range statusResetMetadata[res.GroupResource()] {
			paths = append(paths, fieldpath.MakePathOrDie("metadata", name))
		}
		reset = map[fieldpath.APIVersion]fieldpath.Filter{version: fieldpath.NewExcludeSetFilter(fieldpath.NewSet(paths...))}
	case res.HasSubresource("status"):
		reset = map[fieldpath.APIVersion]fieldpath.Filter{version: fieldpath.NewExcludeSetFilter(fieldpath.NewSet(fieldpath.MakePathOrDie("status")))}
	}
	fm, err := managedfields.NewDefaultFieldManager(f.converter, f.scheme, f.scheme, f.scheme, key.gvk, key.gvk.GroupVersion(), subresource, reset)
	if err != nil {
		return nil, err
	}
	f.byKind[key] = fm
	return fm, nil
}

// managerName is the request's fieldManager, or like upstream the
// User-Agent up to its first "/".
func managerName(r *http.Request, fieldManager string) string {
	if fieldManager != "" {
		return fieldManager
	}
	ua, _, _ := strings.Cut(r.UserAgent(), "/")
	if len(ua) > 128 {
		ua = ua[:128]
	}
	return ua
}

// trackUpdate records in newObj's managedFields that manager set what
// differs from live (nil on create). Computing field sets costs time in
// proportion to the object's fields, so an object too large to be stored
// is refused first (413).
func (s *Server) trackUpdate(res *registry.Resource, subresource string, live, newObj runtime.Object, manager string) (runtime.Object, error) {
	if err := checkObjectSize(newObj); err != nil {
		return nil, err
	}
	fm, err := s.fieldManagers.forResource(res, subresource)
	if err != nil {
		return newObj, nil
	}
	if live == nil {
		if live, err = s.newObject(res); err != nil {
			return newObj, nil
		}
	}
	return fm.UpdateNoErrors(live, newObj, manager), nil
}

// checkObjectSize refuses, with the store's own 413, an object whose
// JSON is over the store's limit for one value (storage.MaxValueSize):
// it could never be written, and everything done with it before the
// write (managed fields, admission, validation) would be wasted. The
// stored form is this JSON without the resourceVersion, and managed
// fields only add to it.
func checkObjectSize(obj any) error {
	var n countingWriter
	if err := json.NewEncoder(&n).Encode(obj); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	if n > storage.MaxValueSize+1 { // +1: Encode's newline
		return errObjectTooLarge()
	}
	return nil
}

// countingWriter counts the bytes written to it.
type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// serverSideApply merges an apply-patch+yaml body into live (nil when the
// object does not exist yet) with field ownership; a field another manager
// owns gives 409 with FieldManagerConflict causes unless force is set.
func (s *Server) serverSideApply(t requestTarget, subresource string, live runtime.Object, patch []byte, manager string, force bool) (runtime.Object, error) {
	applied := &unstructured.Unstructured{Object: map[string]any{}}
	if err := yaml.Unmarshal(patch, &applied.Object); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
	}
	gvk := t.res.GVK()
	if applied.GetAPIVersion() != gvk.GroupVersion().String() || applied.GetKind() != gvk.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version or kind in the applied configuration (%s, %s) does not match %s, %s",
			applied.GetAPIVersion(), applied.GetKind(), gvk.GroupVersion(), gvk.Kind))
	}
	if applied.GetName() != "" && applied.GetName() != t.name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", applied.GetName(), t.name))
	}
	if t.res.Namespaced && applied.GetNamespace() != "" && applied.GetNamespace() != t.namespace {
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if err := checkObjectSize(applied.Object); err != nil {
		return nil, err
	}
	fm, err := s.fieldManagers.forResource(t.res, subresource)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if live == nil {
		if live, err = s.newObject(t.res); err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		m := accessor(live)
		m.SetName(t.name)
		m.SetNamespace(t.namespace)
	}
	out, err := fm.Apply(live, applied, manager, force)
	if err != nil {
		if _, ok := err.(apierrors.APIStatus); ok {
			return nil, err
		}
		return nil, apierrors.NewBadRequest(err.Error())
	}
	out.GetObjectKind().SetGroupVersionKind(gvk)
	return out, nil
}
