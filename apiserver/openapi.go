package apiserver

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// The OpenAPI documents carry paths and operations, which is what kubectl
// needs to trust the server with fieldValidation (apply, create, edit,
// replace, Helm), and in v3 the component schemas `kubectl explain` walks
// (see openapi_schema.go). The v2 document has no definitions, on purpose:
// kubectl would compute strategic merge patches from them, and ours carry
// no patch strategies.

// openAPIV3Path is the index key of a group version ("api/v1",
// "apis/apps/v1").
func openAPIV3Path(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// resourcePaths returns the collection and item URL templates of res.
func resourcePaths(res *registry.Resource) (collection, item string) {
	base := "/" + openAPIV3Path(res.GVR.GroupVersion())
	if res.Namespaced {
		base += "/namespaces/{namespace}"
	}
	collection = base + "/" + res.GVR.Resource
	return collection, collection + "/{name}"
}

func gvkExtension(res *registry.Resource) map[string]string {
	k := res.GVK()
	return map[string]string{"group": k.Group, "version": k.Version, "kind": k.Kind}
}

// operation is one OpenAPI operation with the query parameters kubectl
// probes for.
func operation(swagger2 bool, id string, res *registry.Resource, params ...string) map[string]any {
	var ps []map[string]any
	for _, p := range params {
		param := map[string]any{"name": p, "in": "query"}
		if swagger2 {
			param["type"] = "string"
		} else {
			param["schema"] = map[string]string{"type": "string"}
		}
		ps = append(ps, param)
	}
	return map[string]any{
		"operationId":                     id,
		"x-kubernetes-group-version-kind": gvkExtension(res),
		"parameters":                      ps,
		"responses":                       map[string]any{"200": map[string]string{"description": "OK"}},
	}
}

// openAPIPaths builds the path items of one group version, in OpenAPI v3
// form or, with swagger2, in v2 form.
func (s *Server) openAPIPaths(gv schema.GroupVersion, swagger2 bool) map[string]any {
	paths := map[string]any{}
	for _, res := range s.sortedResources(gv) {
		if res.CreateOnly != nil {
			continue
		}
		collection, item := resourcePaths(res)
		writeParams := []string{"dryRun", "fieldManager", "fieldValidation"}
		paths[collection] = map[string]any{
			"get":    operation(swagger2, "list"+res.Kind, res, "labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"),
			"post":   operation(swagger2, "create"+res.Kind, res, writeParams...),
			"delete": operation(swagger2, "deletecollection"+res.Kind, res, "labelSelector", "fieldSelector"),
		}
		paths[item] = map[string]any{
			"get":    operation(swagger2, "read"+res.Kind, res),
			"put":    operation(swagger2, "replace"+res.Kind, res, writeParams...),
			"patch":  operation(swagger2, "patch"+res.Kind, res, append(writeParams, "force")...),
			"delete": operation(swagger2, "delete"+res.Kind, res, "dryRun", "gracePeriodSeconds", "propagationPolicy"),
		}
	}
	return paths
}

// openAPIV3Document returns the v3 document of gv. Documents never change
// while the server runs, so they are built once, on first request.
func (s *Server) openAPIV3Document(gv schema.GroupVersion) []byte {
	s.openAPIOnce.Do(func() {
		s.openAPIV3Docs = map[schema.GroupVersion][]byte{}
		for _, gv := range s.resources.groups {
			s.openAPIV3Docs[gv] = s.buildOpenAPIV3Document(gv)
		}
	})
	return s.openAPIV3Docs[gv]
}

func (s *Server) buildOpenAPIV3Document(gv schema.GroupVersion) []byte {
	doc := map[string]any{
		"openapi": "3.0.0",
		"info":    map[string]string{"title": "Kubernetes", "version": KubernetesVersion},
		"paths":   s.openAPIPaths(gv, false),
		"components": map[string]any{
			"schemas": s.openAPIComponents(gv.String(), s.sortedResources(gv)),
		},
	}
	body, _ := json.Marshal(doc)
	return body
}

func contentHash(b []byte) string {
	sum := sha512.Sum512(b)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// serveOpenAPIV3Index answers /openapi/v3 with one entry per group
// version; the hash in each URL lets clients cache documents forever.
func (s *Server) serveOpenAPIV3Index(w http.ResponseWriter, r *http.Request) {
	paths := map[string]any{}
	for _, gv := range s.resources.groups {
		doc := s.openAPIV3Document(gv)
		p := openAPIV3Path(gv)
		paths[p] = map[string]string{"serverRelativeURL": "/openapi/v3/" + p + "?hash=" + contentHash(doc)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"paths": paths})
}

// serveOpenAPIV3GroupVersion answers /openapi/v3/api/v1 and
// /openapi/v3/apis/<group>/<version>.
func (s *Server) serveOpenAPIV3GroupVersion(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/openapi/v3/"), "/")
	for _, gv := range s.resources.groups {
		if openAPIV3Path(gv) == rest {
			doc := s.openAPIV3Document(gv)
			w.Header().Set("Content-Type", mediaJSON)
			w.Header().Set("Etag", `"`+contentHash(doc)+`"`)
			if r.URL.Query().Get("hash") != "" {
				w.Header().Set("Cache-Control", "public, immutable")
			}
			_, _ = w.Write(doc)
			return
		}
	}
	s.writeError(w, r, errNotFoundPath(r))
}

// serveOpenAPIV2 answers /openapi/v2 as JSON, or as gnostic protobuf when
// asked (kubectl's fallback when v3 fails).
func (s *Server) serveOpenAPIV2(w http.ResponseWriter, r *http.Request) {
	paths := map[string]any{}
	for _, gv := range s.resources.groups {
		for p, item := range s.openAPIPaths(gv, true) {
			paths[p] = item
		}
	}
	doc, _ := json.Marshal(map[string]any{
		"swagger": "2.0",
		"info":    map[string]string{"title": "Kubernetes", "version": KubernetesVersion},
		"paths":   paths,
	})
	if strings.Contains(r.Header.Get("Accept"), "application/com.github.proto-openapi.spec.v2") {
		parsed, err := openapi_v2.ParseDocument(doc)
		if err == nil {
			if body, err := proto.Marshal(parsed); err == nil {
				w.Header().Set("Content-Type", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
				_, _ = w.Write(body)
				return
			}
		}
	}
	w.Header().Set("Content-Type", mediaJSON)
	_, _ = w.Write(doc)
}
