package apiserver

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/apiserver/registry/apps"
	"github.com/tinykube/tinykube/apiserver/registry/authentication"
	authorizationreviews "github.com/tinykube/tinykube/apiserver/registry/authorization"
	"github.com/tinykube/tinykube/apiserver/registry/batch"
	"github.com/tinykube/tinykube/apiserver/registry/certificates"
	"github.com/tinykube/tinykube/apiserver/registry/coordination"
	"github.com/tinykube/tinykube/apiserver/registry/core"
	"github.com/tinykube/tinykube/apiserver/registry/discovery"
	"github.com/tinykube/tinykube/apiserver/registry/events"
	"github.com/tinykube/tinykube/apiserver/registry/policy"
	"github.com/tinykube/tinykube/apiserver/registry/rbac"
)

// resourceTable holds every served resource, in discovery order.
type resourceTable struct {
	// groups in the order /apis lists them; "" first.
	groups []schema.GroupVersion
	byGV   map[schema.GroupVersion][]*registry.Resource
	byGVR  map[schema.GroupVersionResource]*registry.Resource
}

func (t *resourceTable) add(r *registry.Resource) {
	gv := r.GVR.GroupVersion()
	if _, ok := t.byGV[gv]; !ok {
		t.groups = append(t.groups, gv)
	}
	t.byGV[gv] = append(t.byGV[gv], r)
	t.byGVR[r.GVR] = r
}

func (t *resourceTable) lookup(gvr schema.GroupVersionResource) (*registry.Resource, bool) {
	r, ok := t.byGVR[gvr]
	return r, ok
}

func (t *resourceTable) servesGroupVersion(gv schema.GroupVersion) bool {
	_, ok := t.byGV[gv]
	return ok
}

var (
	coreV1   = schema.GroupVersion{Version: "v1"}
	rbacV1   = schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}
	policyV1 = schema.GroupVersion{Group: "policy", Version: "v1"}
)

// groups are the API groups the server serves, in discovery order:
// adding a group is adding its package and one line here, with whatever
// of the server's state the group needs.
func (s *Server) groups() []registry.Group {
	return []registry.Group{
		core.Group{Bind: s.createLegacyBinding, AllocateService: s.admitService, ReleaseService: s.releaseService, EventWritten: s.admitEvent},
		apps.Group{},
		batch.Group{},
		rbac.Group{},
		authentication.Group{},
		authorizationreviews.Group{Authorizer: reviewAuthorizer{s}},
		coordination.Group{},
		discovery.Group{},
		events.Group{EventWritten: s.admitEvent},
		certificates.Group{},
		policy.Group{},
	}
}

// registryConfig is what the server gives every group.
func (s *Server) registryConfig() registry.Config {
	return registry.Config{Now: s.now, AdvertiseAddress: s.cfg.AdvertiseAddress}
}

// newResourceTable builds the table of every resource s serves.
func newResourceTable(s *Server) *resourceTable {
	t := &resourceTable{byGV: map[schema.GroupVersion][]*registry.Resource{}, byGVR: map[schema.GroupVersionResource]*registry.Resource{}}
	cfg := s.registryConfig()
	for _, g := range s.groups() {
		for _, r := range g.Resources(cfg) {
			t.add(r)
		}
	}
	return t
}
