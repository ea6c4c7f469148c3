package apiserver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/authz"
)

// privilegedGroup is upstream's system:masters: its members may do
// everything, whatever RBAC says.
const privilegedGroup = "system:masters"

// authorization is the server's authorizer chain, as kube-apiserver runs
// it with --authorization-mode=Node,RBAC: system:masters, then the Node
// authorizer, then RBAC over the store's roles and bindings.
type authorization struct {
	chain authz.Authorizer
	rbac  authz.RBAC
	cache *rbacCache
}

// setUpAuthorization builds the authorizer chain.
func (s *Server) setUpAuthorization() {
	cache := newRBACCache(s)
	rbac := authz.RBAC{Policy: cache.policy}
	s.authz = &authorization{
		chain: authz.Union{
			authz.PrivilegedGroups{privilegedGroup},
			authz.NodeAuthorizer{Pods: storePodLister{s}, Rules: authz.NodeRules()},
			rbac,
		},
		rbac:  rbac,
		cache: cache,
	}
}

// authorizeTimeout bounds how long a denial waits for the RBAC cache to
// catch up with the store.
const authorizeTimeout = 2 * time.Second

// authorize decides on the request's attributes with the chain; a
// denial is answered only after the RBAC policy has caught up with every
// write committed before it.
func (z *authorization) authorize(ctx context.Context, a authz.Attributes) (authz.Decision, string, error) {
	if err := z.cache.start(ctx); err != nil {
		return authz.NoOpinion, "", err
	}
	d, reason, err := z.chain.Authorize(ctx, a)
	if d == authz.Allow || err != nil {
		return d, reason, err
	}
	wait, cancel := context.WithTimeout(ctx, authorizeTimeout)
	defer cancel()
	z.cache.catchUp(wait)
	return z.chain.Authorize(ctx, a)
}

// attributesKey is the context key of the request's authz.Attributes.
type attributesKey struct{}

// attributesFrom returns the attributes the request was authorized
// with; ok is false when it was not (no authenticated user).
func attributesFrom(ctx context.Context) (authz.Attributes, bool) {
	a, ok := ctx.Value(attributesKey{}).(authz.Attributes)
	return a, ok
}

// withAuthorization authorizes every request that carries an
// authenticated user and answers 403 for the ones the chain does not
// allow. A request without a user did not go through an authenticator:
// the server was embedded without one (tests, in-process lookups), and
// there is nobody to authorize.
func (s *Server) withAuthorization(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := authn.UserFrom(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		user, err := s.impersonate(r.Context(), r.Header, user)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		dropImpersonationHeaders(r.Header)
		r = r.WithContext(authn.WithUser(r.Context(), user))
		p, ok := pathFrom(r.Context())
		if !ok {
			// Only reachable when withCanonicalPath is not in front.
			var err error
			if p, err = parsePath(r.URL); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		a := requestAttributes(r, p, user)
		judged := a
		d, reason, err := s.authz.authorize(r.Context(), judged)
		if d == authz.Allow && isPodStreamWebSocket(r, a) {
			// A WebSocket handshake is a GET, but it runs a command or
			// opens a stream like the POST of SPDY does: upstream (since
			// 1.35, AuthorizePodWebsocketUpgradeCreatePermission) asks
			// for create as well.
			judged.Verb = "create"
			d, reason, err = s.authz.authorize(r.Context(), judged)
		}
		if d != authz.Allow {
			if err != nil {
				s.writeError(w, r, apierrors.NewInternalError(err))
				return
			}
			s.log.Debug("forbidden", "uri", r.RequestURI, "user", user.Name, "reason", reason)
			s.writeError(w, r, forbidden(judged, reason))
			return
		}
		ctx := context.WithValue(r.Context(), attributesKey{}, a)
		if err := s.admitRequest(ctx, a); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// isPodStreamWebSocket reports whether r is the WebSocket handshake of
// pods/exec, attach or portforward.
func isPodStreamWebSocket(r *http.Request, a authz.Attributes) bool {
	return a.ResourceRequest && a.Verb == "get" && a.APIGroup == "" && a.Resource == "pods" &&
		(a.Subresource == "exec" || a.Subresource == "attach" || a.Subresource == "portforward") &&
		wsstream.IsWebSocketRequest(r)
}

// forbidden is upstream's 403 for a request no authorizer allowed.
func forbidden(a authz.Attributes, reason string) error {
	msg := authz.ForbiddenMessage(a)
	if reason != "" {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}, a.Name, errors.New(msg))
}

// requestAttributes reads a request's attributes from its method, its
// parsed path and its query: the same requestPath the handlers serve.
func requestAttributes(r *http.Request, p requestPath, user authn.User) authz.Attributes {
	a := authz.Attributes{User: user, Path: r.URL.Path, Verb: strings.ToLower(r.Method)}
	if !p.resourceRequest {
		return a
	}
	a.ResourceRequest = true
	a.APIGroup, a.APIVersion = p.group, p.version
	a.Namespace, a.Resource, a.Name, a.Subresource = p.namespace, p.resource, p.name, p.subresource
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		a.Verb = "get"
	case http.MethodPost:
		a.Verb = "create"
	case http.MethodPut:
		a.Verb = "update"
	case http.MethodPatch:
		a.Verb = "patch"
	case http.MethodDelete:
		a.Verb = "delete"
	}
	if p.watchPrefix {
		a.Verb = "watch"
	}
	if a.Name == "" && a.Verb == "get" {
		a.Verb = "list"
		if isWatch(r) {
			a.Verb = "watch"
		}
	}
	if a.Verb == "list" || a.Verb == "watch" {
		if sel, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector")); err == nil {
			a.FieldSelector = sel.Requirements()
			if name, ok := sel.RequiresExactMatch("metadata.name"); ok && a.Name == "" && len(path.IsValidPathSegmentName(name)) == 0 {
				a.Name = name
			}
		}
	}
	if a.Name == "" && a.Verb == "delete" {
		a.Verb = "deletecollection"
	}
	return a
}

// reviewAuthorizer answers the access reviews (registry/authorization)
// with the server's authorizer.
type reviewAuthorizer struct{ s *Server }

func (r reviewAuthorizer) Authorize(ctx context.Context, a authz.Attributes) (authz.Decision, string, error) {
	return r.s.authz.authorize(ctx, a)
}

func (r reviewAuthorizer) RulesFor(ctx context.Context, user authn.User, namespace string) ([]rbacv1.PolicyRule, error, error) {
	if err := r.s.authz.cache.start(ctx); err != nil {
		return nil, nil, err
	}
	rules, evalErr := r.s.authz.rbac.RulesFor(user, namespace)
	return rules, evalErr, nil
}
