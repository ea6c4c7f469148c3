package apiserver

import (
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// aggregatedDiscoveryContentType is the only Content-Type by which
// client-go recognises an aggregated discovery answer.
const aggregatedDiscoveryContentType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// wantsAggregatedDiscovery reports whether Accept asks for apidiscovery v2.
func wantsAggregatedDiscovery(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt == mediaJSON && params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" && params["as"] == "APIGroupDiscoveryList" {
			return true
		}
	}
	return false
}

// subresourceInfo is what discovery says about one subresource.
type subresourceInfo struct {
	kind  schema.GroupVersionKind // zero: the parent's kind
	verbs []string
}

func subresourceInfoOf(r *registry.Resource, name string) subresourceInfo {
	switch name {
	case "status", "approval":
		return subresourceInfo{verbs: []string{"get", "patch", "update"}}
	case "scale":
		return subresourceInfo{kind: scaleGVK, verbs: []string{"get", "patch", "update"}}
	case "binding":
		return subresourceInfo{kind: coreV1.WithKind("Binding"), verbs: []string{"create"}}
	case "eviction":
		return subresourceInfo{kind: schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, verbs: []string{"create"}}
	case "log":
		return subresourceInfo{verbs: []string{"get"}}
	case "exec":
		return subresourceInfo{kind: coreV1.WithKind("PodExecOptions"), verbs: []string{"create", "get"}}
	case "attach":
		return subresourceInfo{kind: coreV1.WithKind("PodAttachOptions"), verbs: []string{"create", "get"}}
	case "portforward":
		return subresourceInfo{kind: coreV1.WithKind("PodPortForwardOptions"), verbs: []string{"create", "get"}}
	case "finalize":
		return subresourceInfo{verbs: []string{"update"}}
	case "token":
		return subresourceInfo{kind: tokenRequestKind, verbs: []string{"create"}}
	}
	return subresourceInfo{}
}

// serveLegacyVersions answers /api.
func (s *Server) serveLegacyVersions(w http.ResponseWriter, r *http.Request) {
	if wantsAggregatedDiscovery(r) {
		s.writeAggregated(w, []schema.GroupVersion{coreV1})
		return
	}
	addr := "127.0.0.1"
	if s.cfg.AdvertiseAddress.IsValid() {
		addr = s.cfg.AdvertiseAddress.String()
	}
	s.encode(w, http.StatusOK, mediaJSON, &metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
		Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{
			ClientCIDR: "0.0.0.0/0", ServerAddress: joinHostPort(addr, s.cfg.SecurePort),
		}},
	})
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

func (s *Server) apiGroups() []schema.GroupVersion {
	var out []schema.GroupVersion
	for _, gv := range s.resources.groups {
		if gv.Group != "" {
			out = append(out, gv)
		}
	}
	return out
}

func apiGroup(gv schema.GroupVersion) metav1.APIGroup {
	v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
	return metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
}

// serveGroups answers /apis.
func (s *Server) serveGroups(w http.ResponseWriter, r *http.Request) {
	if wantsAggregatedDiscovery(r) {
		s.writeAggregated(w, s.apiGroups())
		return
	}
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, gv := range s.apiGroups() {
		list.Groups = append(list.Groups, apiGroup(gv))
	}
	s.encode(w, http.StatusOK, mediaJSON, list)
}

// serveGroup answers /apis/<group>.
func (s *Server) serveGroup(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "group")
	for _, gv := range s.apiGroups() {
		if gv.Group == name {
			g := apiGroup(gv)
			g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
			s.encode(w, http.StatusOK, mediaJSON, &g)
			return
		}
	}
	s.writeError(w, r, errNotFoundPath(r))
}

// serveResourceList answers /api/v1 and /apis/<group>/<version>.
func (s *Server) serveResourceList(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion) {
	list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
	for _, res := range s.sortedResources(gv) {
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: res.GVR.Resource, SingularName: res.Singular, Namespaced: res.Namespaced, Kind: res.Kind,
			Verbs: res.Verbs(), ShortNames: res.ShortNames, Categories: res.Categories,
		})
		for _, sub := range res.Subresources {
			info := subresourceInfoOf(res, sub)
			ar := metav1.APIResource{Name: res.GVR.Resource + "/" + sub, Namespaced: res.Namespaced, Kind: res.Kind, Verbs: info.verbs}
			if !info.kind.Empty() {
				ar.Kind = info.kind.Kind
				if info.kind.GroupVersion() != gv {
					ar.Group, ar.Version = info.kind.Group, info.kind.Version
				}
			}
			list.APIResources = append(list.APIResources, ar)
		}
	}
	s.encode(w, http.StatusOK, mediaJSON, list)
}

func (s *Server) sortedResources(gv schema.GroupVersion) []*registry.Resource {
	out := append([]*registry.Resource(nil), s.resources.byGV[gv]...)
	sort.Slice(out, func(i, j int) bool { return out[i].GVR.Resource < out[j].GVR.Resource })
	return out
}

// writeAggregated answers with an apidiscovery.k8s.io/v2 document covering
// the given group versions.
func (s *Server) writeAggregated(w http.ResponseWriter, gvs []schema.GroupVersion) {
	list := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}}
	for _, gv := range gvs {
		version := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		for _, res := range s.sortedResources(gv) {
			scope := apidiscoveryv2.ScopeCluster
			if res.Namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			kind := res.GVK()
			d := apidiscoveryv2.APIResourceDiscovery{
				Resource: res.GVR.Resource, SingularResource: res.Singular, Scope: scope,
				ResponseKind: &metav1.GroupVersionKind{Group: kind.Group, Version: kind.Version, Kind: kind.Kind},
				Verbs:        res.Verbs(), ShortNames: res.ShortNames, Categories: res.Categories,
			}
			for _, sub := range res.Subresources {
				info := subresourceInfoOf(res, sub)
				k := kind
				if !info.kind.Empty() {
					k = info.kind
				}
				d.Subresources = append(d.Subresources, apidiscoveryv2.APISubresourceDiscovery{
					Subresource:  sub,
					ResponseKind: &metav1.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind},
					Verbs:        info.verbs,
				})
			}
			version.Resources = append(version.Resources, d)
		}
		group := apidiscoveryv2.APIGroupDiscovery{Versions: []apidiscoveryv2.APIVersionDiscovery{version}}
		group.Name = gv.Group
		list.Items = append(list.Items, group)
	}
	w.Header().Set("Vary", "Accept")
	s.encodeAs(w, http.StatusOK, aggregatedDiscoveryContentType, list)
}
