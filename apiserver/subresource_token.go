package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/admission"
	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

// Token lifetimes as upstream's TokenRequest knows them.
const (
	// defaultTokenExpirationSeconds is a TokenRequest's expirationSeconds
	// when it names none.
	defaultTokenExpirationSeconds = 3600
	// minTokenExpirationSeconds is the shortest lifetime a TokenRequest
	// may ask for (10 minutes).
	minTokenExpirationSeconds = 600
	// maxTokenExpirationSeconds is the longest (2^32 seconds).
	maxTokenExpirationSeconds = 1 << 32
	// extendedTokenExpiration is how long such a token stays valid
	// (upstream's ExpirationExtensionSeconds, one year), so clients that
	// never reread the refreshed file keep working; its warnafter claim
	// still says when the requested lifetime ended.
	extendedTokenExpiration = 365 * 24 * time.Hour
)

var tokenRequestKind = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")

// serveTokenRequest issues a service account token (POST
// serviceaccounts/<name>/token), as upstream's TokenRequest REST does:
// the body is a TokenRequest, the answer the same request with the token
// in its status. Nothing is stored.
func (s *Server) serveTokenRequest(w http.ResponseWriter, r *http.Request, t requestTarget) error {
	issuer := s.cfg.ServiceAccountTokens
	if issuer == nil {
		return errNotFoundPath(r)
	}
	obj, err := s.readObject(w, r, tokenRequestKind)
	if err != nil {
		return err
	}
	req, ok := obj.(*authenticationv1.TokenRequest)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("not a TokenRequest: %T", obj))
	}
	if req.Name != "" && req.Name != t.name {
		return apierrors.NewInvalid(tokenRequestKind.GroupKind(), t.name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "name"), req.Name, "must match the service account name if specified")})
	}
	if req.Namespace != "" && req.Namespace != t.namespace {
		return apierrors.NewInvalid(tokenRequestKind.GroupKind(), t.name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "namespace"), req.Namespace, "must match the service account namespace if specified")})
	}
	if err := s.restrictNodeTokenRequest(r, t, req); err != nil {
		return err
	}
	saObj, err := s.getStored(r.Context(), t.res, t.namespace, t.name)
	if err != nil {
		return err
	}
	sa := saObj.(*corev1.ServiceAccount)
	if req.UID != "" && req.UID != sa.UID {
		return apierrors.NewConflict(schema.GroupResource{Group: tokenRequestKind.Group, Resource: tokenRequestKind.Kind}, t.name,
			fmt.Errorf("the UID in the token request (%s) does not match the UID of the service account (%s)", req.UID, sa.UID))
	}

	if len(req.Spec.Audiences) == 0 {
		req.Spec.Audiences = issuer.Audiences()
	}
	if req.Spec.ExpirationSeconds == nil {
		seconds := int64(defaultTokenExpirationSeconds)
		req.Spec.ExpirationSeconds = &seconds
	}
	req.Name, req.Namespace, req.UID = sa.Name, sa.Namespace, sa.UID
	// The time is taken before the token is built, so the expiry in the
	// status is never later than the token's.
	now := s.now()
	req.CreationTimestamp = metav1.NewTime(now)
	req.Status = authenticationv1.TokenRequestStatus{}
	if errs := validateTokenRequest(req); len(errs) > 0 {
		return apierrors.NewInvalid(tokenRequestKind.GroupKind(), "", errs)
	}

	claims := authn.ServiceAccountClaims{
		Namespace:      sa.Namespace,
		ServiceAccount: authn.ObjectRef{Name: sa.Name, UID: string(sa.UID)},
		Audiences:      req.Spec.Audiences,
		Lifetime:       time.Duration(*req.Spec.ExpirationSeconds) * time.Second,
		IssuedAt:       now,
	}
	if ref := req.Spec.BoundObjectRef; ref != nil {
		if err := s.bindToken(r, t.namespace, sa, ref, &claims); err != nil {
			return err
		}
	}
	if s.extendTokenExpiration() && claims.Pod != nil && *req.Spec.ExpirationSeconds == admission.KubeletTokenExpirationSeconds &&
		isSubset(req.Spec.Audiences, issuer.Audiences()) {
		claims.WarnAfter = claims.Lifetime
		claims.Lifetime = extendedTokenExpiration
	}
	token, _, err := issuer.Issue(claims)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("failed to generate token: %w", err))
	}
	req.TypeMeta = metav1.TypeMeta{APIVersion: tokenRequestKind.GroupVersion().String(), Kind: tokenRequestKind.Kind}
	req.Status = authenticationv1.TokenRequestStatus{
		Token:               token,
		ExpirationTimestamp: metav1.NewTime(now.Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second)),
	}
	return s.respond(w, r, nil, http.StatusCreated, req)
}

// extendTokenExpiration is upstream's --service-account-extend-token-expiration.
func (s *Server) extendTokenExpiration() bool {
	return s.cfg.ServiceAccountExtendTokenExpiration == nil || *s.cfg.ServiceAccountExtendTokenExpiration
}

// validateTokenRequest is upstream's static validation of a TokenRequest.
func validateTokenRequest(req *authenticationv1.TokenRequest) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("spec", "expirationSeconds")
	if seconds := *req.Spec.ExpirationSeconds; seconds < minTokenExpirationSeconds {
		errs = append(errs, field.Invalid(path, seconds, "may not specify a duration less than 10 minutes"))
	} else if seconds > maxTokenExpirationSeconds {
		errs = append(errs, field.Invalid(path, seconds, "may not specify a duration larger than 2^32 seconds"))
	}
	return errs
}

// bindToken binds the token to the object ref names, which must exist
// (with ref's UID when it names one): a pod of the service account, with
// its node as information, a secret, or a node.
func (s *Server) bindToken(r *http.Request, namespace string, sa *corev1.ServiceAccount, ref *authenticationv1.BoundObjectReference, claims *authn.ServiceAccountClaims) error {
	gvk := schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
	var resource, objNamespace string
	switch {
	case gvk.Group == "" && gvk.Kind == "Pod":
		resource, objNamespace = "pods", namespace
	case gvk.Group == "" && gvk.Kind == "Secret":
		resource, objNamespace = "secrets", namespace
	case gvk.Group == "" && gvk.Kind == "Node":
		resource = "nodes"
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to object of type %s", gvk.String()))
	}
	res, _ := s.resources.lookup(coreV1.WithResource(resource))
	obj, err := s.getStored(r.Context(), res, objNamespace, ref.Name)
	if err != nil {
		return err
	}
	m := accessor(obj)
	if ref.UID != "" && ref.UID != m.GetUID() {
		return apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, ref.Name, fmt.Errorf(
			"the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
	}
	bound := &authn.ObjectRef{Name: m.GetName(), UID: string(m.GetUID())}
	switch resource {
	case "pods":
		pod := obj.(*corev1.Pod)
		if pod.Spec.ServiceAccountName != sa.Name {
			return apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", sa.Name))
		}
		claims.Pod = bound
		// The node is information for the token's user; a pod whose
		// node cannot be read still gets its token, as upstream.
		if pod.Spec.NodeName != "" {
			nodes, _ := s.resources.lookup(coreV1.WithResource("nodes"))
			if node, err := s.getStored(r.Context(), nodes, "", pod.Spec.NodeName); err == nil {
				claims.Node = &authn.ObjectRef{Name: pod.Spec.NodeName, UID: string(accessor(node).GetUID())}
			}
		}
	case "secrets":
		claims.Secret = bound
	case "nodes":
		claims.Node = bound
	}
	return nil
}

// restrictNodeTokenRequest is upstream's NodeRestriction admission of
// TokenRequests: a node may only ask for tokens bound to a pod, by name
// and uid, that is scheduled to it, so a node's credentials never yield a
// token that outlives its pods or belongs to another node's pod. The Node
// authorizer has already limited it to the service accounts of its pods.
func (s *Server) restrictNodeTokenRequest(r *http.Request, t requestTarget, req *authenticationv1.TokenRequest) error {
	u, ok := authn.UserFrom(r.Context())
	node, isNode := strings.CutPrefix(u.Name, pki.NodeUserPrefix)
	if !ok || !isNode || !slices.Contains(u.Groups, pki.NodesGroup) {
		return nil
	}
	forbidden := func(msg string) error {
		return apierrors.NewForbidden(t.res.GroupResource(), t.name, errors.New(msg))
	}
	ref := req.Spec.BoundObjectRef
	if ref == nil || ref.APIVersion != "v1" || ref.Kind != "Pod" || ref.Name == "" {
		return forbidden("node requested token not bound to a pod")
	}
	if ref.UID == "" {
		return forbidden("node requested token with a pod binding without a uid")
	}
	pods, _ := s.resources.lookup(coreV1.WithResource("pods"))
	obj, err := s.getStored(r.Context(), pods, t.namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		return apierrors.NewForbidden(t.res.GroupResource(), t.name, err)
	}
	pod := obj.(*corev1.Pod)
	if ref.UID != pod.UID {
		return forbidden(fmt.Sprintf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
	}
	if pod.Spec.NodeName != node {
		return forbidden("node requested token bound to a pod scheduled on a different node")
	}
	return nil
}

// isSubset reports whether every element of some is in all.
func isSubset(some, all []string) bool {
	for _, a := range some {
		if !slices.Contains(all, a) {
			return false
		}
	}
	return true
}
