package apiserver

import (
	"context"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// respond writes obj (an object or a list of res) in the format the client
// negotiated: the object itself, a Table, or PartialObjectMetadata.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, res *registry.Resource, code int, obj runtime.Object) error {
	format, err := negotiate(r)
	if err != nil {
		return err
	}
	switch format.as {
	case "Table":
		if res != nil {
			table, err := s.toTable(r, res, obj)
			if err != nil {
				return err
			}
			s.encode(w, code, mediaJSON, table)
			return nil
		}
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		if res != nil {
			s.encode(w, code, mediaJSON, toPartialMetadata(obj))
			return nil
		}
	}
	s.encode(w, code, format.mediaType, obj)
	return nil
}

// deprecatedResources maps resources upstream has deprecated to the
// warning it sends on every request to them, whatever the verb, in
// apiserver's deprecation.WarningMessage wording.
var deprecatedResources = map[schema.GroupVersionResource]string{
	coreV1.WithResource("endpoints"): "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice",
}

// warningSinkKey keys the response whose Warning headers the code below
// the HTTP handlers adds to.
type warningSinkKey struct{}

// withWarningSink lets warn, given the returned context, add warnings to
// w.
func withWarningSink(ctx context.Context, w http.ResponseWriter) context.Context {
	return context.WithValue(ctx, warningSinkKey{}, w)
}

// warn adds warnings to the response of the request ctx belongs to, as
// upstream's strategies' WarningsOnCreate and WarningsOnUpdate do; server
// writes of its own (bootstrap) have no response and drop them.
func warn(ctx context.Context, texts []string) {
	w, ok := ctx.Value(warningSinkKey{}).(http.ResponseWriter)
	if !ok {
		return
	}
	for _, text := range texts {
		addWarning(w, text)
	}
}

// warnIfDeprecated adds the deprecation warning of res, if any, before
// anything else is written, so errors and watches carry it too.
func warnIfDeprecated(w http.ResponseWriter, res *registry.Resource) {
	if text, ok := deprecatedResources[res.GVR]; ok {
		addWarning(w, text)
	}
}

// toPartialMetadata turns an object into PartialObjectMetadata and a list
// into PartialObjectMetadataList.
func toPartialMetadata(obj runtime.Object) runtime.Object {
	if meta.IsListType(obj) {
		out := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}}
		if lm, err := meta.ListAccessor(obj); err == nil {
			out.ResourceVersion = lm.GetResourceVersion()
			out.Continue = lm.GetContinue()
			out.RemainingItemCount = lm.GetRemainingItemCount()
		}
		_ = meta.EachListItem(obj, func(item runtime.Object) error {
			out.Items = append(out.Items, *partialObject(item))
			return nil
		})
		return out
	}
	return partialObject(obj)
}

func partialObject(obj runtime.Object) *metav1.PartialObjectMetadata {
	p := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if om, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			p.ObjectMeta = *om.DeepCopy()
		}
	}
	return p
}
