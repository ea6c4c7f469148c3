package authorization

import (
	"context"
	"fmt"
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/authz"
	"github.com/tinykube/tinykube/apiserver/registry"
)

var authorizationV1 = authorizationv1.SchemeGroupVersion

// Authorizer is the server's authorizer, as the reviews ask it.
type Authorizer interface {
	// Authorize decides a and says why; err is an evaluation error.
	Authorize(ctx context.Context, a authz.Attributes) (authz.Decision, string, error)
	// RulesFor lists the RBAC rules user holds in namespace; evalErr
	// says what could not be evaluated (the answer says so too), err
	// fails the request.
	RulesFor(ctx context.Context, user authn.User, namespace string) (rules []rbacv1.PolicyRule, evalErr, err error)
}

// Group serves authorization.k8s.io/v1: the access reviews, answered by
// Authorizer (nil answers every review with "no authorizer"), never
// stored.
type Group struct {
	Authorizer Authorizer
}

// Resources are selfsubjectaccessreviews (`kubectl auth can-i`),
// subjectaccessreviews and localsubjectaccessreviews (may another user
// do this?) and selfsubjectrulesreviews (`kubectl auth can-i --list`).
func (g Group) Resources(registry.Config) []*registry.Resource {
	r := reviewer{g.Authorizer}
	return []*registry.Resource{
		{GVR: authorizationV1.WithResource("selfsubjectaccessreviews"), Kind: "SelfSubjectAccessReview", Singular: "selfsubjectaccessreview",
			CreateOnly: r.selfSubjectAccessReview},
		{GVR: authorizationV1.WithResource("localsubjectaccessreviews"), Kind: "LocalSubjectAccessReview",
			Singular: "localsubjectaccessreview", Namespaced: true, CreateOnly: r.localSubjectAccessReview},
		{GVR: authorizationV1.WithResource("selfsubjectrulesreviews"), Kind: "SelfSubjectRulesReview",
			Singular: "selfsubjectrulesreview", CreateOnly: r.selfSubjectRulesReview},
		{GVR: authorizationV1.WithResource("subjectaccessreviews"), Kind: "SubjectAccessReview",
			Singular: "subjectaccessreview", CreateOnly: r.subjectAccessReview},
	}
}

// reviewer answers the reviews.
type reviewer struct{ z Authorizer }

// selfSubjectAccessReview answers `kubectl auth can-i` for the
// requesting user with the server's authorizer.
func (rv reviewer) selfSubjectAccessReview(r *http.Request, _ string, obj runtime.Object) (runtime.Object, error) {
	review := obj.(*authorizationv1.SelfSubjectAccessReview)
	gk := authorizationV1.WithKind("SelfSubjectAccessReview").GroupKind()
	if errs := validateAccessSpec(review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes); len(errs) > 0 {
		return nil, apierrors.NewInvalid(gk, "", errs)
	}
	review.TypeMeta = metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectAccessReview"}
	user, ok := authn.UserFrom(r.Context())
	if !ok {
		review.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true,
			Reason: "the request was not authenticated, so nothing is authorized"}
		return review, nil
	}
	review.Status = rv.reviewAccess(r.Context(), user, review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes)
	return review, nil
}

// subjectAccessReview answers whether spec.user (with spec.groups) may
// do what the review asks.
func (rv reviewer) subjectAccessReview(r *http.Request, _ string, obj runtime.Object) (runtime.Object, error) {
	review := obj.(*authorizationv1.SubjectAccessReview)
	gk := authorizationV1.WithKind("SubjectAccessReview").GroupKind()
	errs := validateAccessSpec(review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes)
	errs = append(errs, validateReviewSubject(review.Spec)...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(gk, "", errs)
	}
	review.TypeMeta = metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"}
	review.Status = rv.reviewAccess(r.Context(), reviewSubject(review.Spec), review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes)
	return review, nil
}

// localSubjectAccessReview is a SubjectAccessReview limited to the
// namespace it is created in.
func (rv reviewer) localSubjectAccessReview(r *http.Request, namespace string, obj runtime.Object) (runtime.Object, error) {
	review := obj.(*authorizationv1.LocalSubjectAccessReview)
	gk := authorizationV1.WithKind("LocalSubjectAccessReview").GroupKind()
	var errs field.ErrorList
	if review.Spec.ResourceAttributes == nil {
		errs = append(errs, field.Required(field.NewPath("spec", "resourceAttributes"), "disallowed on this kind of request"))
	} else if review.Spec.ResourceAttributes.Namespace != namespace {
		errs = append(errs, field.Invalid(field.NewPath("spec", "resourceAttributes", "namespace"), review.Spec.ResourceAttributes.Namespace,
			"must match metadata.namespace"))
	}
	if review.Spec.NonResourceAttributes != nil {
		errs = append(errs, field.Invalid(field.NewPath("spec", "nonResourceAttributes"), review.Spec.NonResourceAttributes, "disallowed on this kind of request"))
	}
	errs = append(errs, validateReviewSubject(review.Spec)...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(gk, "", errs)
	}
	review.TypeMeta = metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "LocalSubjectAccessReview"}
	review.Status = rv.reviewAccess(r.Context(), reviewSubject(review.Spec), review.Spec.ResourceAttributes, nil)
	return review, nil
}

func validateAccessSpec(res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) field.ErrorList {
	switch {
	case res == nil && nonRes == nil:
		return field.ErrorList{field.Required(field.NewPath("spec", "resourceAttributes"), "exactly one of nonResourceAttributes or resourceAttributes must be specified")}
	case res != nil && nonRes != nil:
		return field.ErrorList{field.Invalid(field.NewPath("spec", "nonResourceAttributes"), nonRes, `cannot be specified in combination with resourceAttributes`)}
	}
	return nil
}

func validateReviewSubject(spec authorizationv1.SubjectAccessReviewSpec) field.ErrorList {
	if spec.User == "" && len(spec.Groups) == 0 {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "user"), spec.User, `at least one of user or group must be specified`)}
	}
	return nil
}

func reviewSubject(spec authorizationv1.SubjectAccessReviewSpec) authn.User {
	return authn.User{Name: spec.User, UID: spec.UID, Groups: spec.Groups}
}

// reviewAccess asks the server's authorizer what the request would get.
func (rv reviewer) reviewAccess(ctx context.Context, user authn.User, res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) authorizationv1.SubjectAccessReviewStatus {
	a := authz.Attributes{User: user}
	if res != nil {
		a.ResourceRequest = true
		a.Verb, a.APIGroup, a.APIVersion, a.Resource = res.Verb, res.Group, res.Version, res.Resource
		a.Subresource, a.Namespace, a.Name = res.Subresource, res.Namespace, res.Name
		if res.FieldSelector != nil && res.FieldSelector.RawSelector != "" {
			if sel, err := fields.ParseSelector(res.FieldSelector.RawSelector); err == nil {
				a.FieldSelector = sel.Requirements()
			}
		}
	} else {
		a.Verb, a.Path = nonRes.Verb, nonRes.Path
	}
	if rv.z == nil {
		return authorizationv1.SubjectAccessReviewStatus{EvaluationError: "no authorizer"}
	}
	d, reason, err := rv.z.Authorize(ctx, a)
	status := authorizationv1.SubjectAccessReviewStatus{Allowed: d == authz.Allow, Denied: d == authz.Deny, Reason: reason}
	if err != nil {
		status.EvaluationError = err.Error()
	}
	return status
}

// selfSubjectRulesReview lists what the requesting user may do in a
// namespace, from its RBAC bindings: `kubectl auth can-i --list`.
func (rv reviewer) selfSubjectRulesReview(r *http.Request, _ string, obj runtime.Object) (runtime.Object, error) {
	review := obj.(*authorizationv1.SelfSubjectRulesReview)
	if review.Spec.Namespace == "" {
		return nil, apierrors.NewInvalid(authorizationV1.WithKind("SelfSubjectRulesReview").GroupKind(), "",
			field.ErrorList{field.Required(field.NewPath("spec", "namespace"), "")})
	}
	review.TypeMeta = metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectRulesReview"}
	user, ok := authn.UserFrom(r.Context())
	if !ok || rv.z == nil {
		review.Status = authorizationv1.SubjectRulesReviewStatus{
			ResourceRules:    []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
			NonResourceRules: []authorizationv1.NonResourceRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
		}
		return review, nil
	}
	rules, evalErr, err := rv.z.RulesFor(r.Context(), user, review.Spec.Namespace)
	if err != nil {
		return nil, err
	}
	status := authorizationv1.SubjectRulesReviewStatus{
		ResourceRules:    []authorizationv1.ResourceRule{},
		NonResourceRules: []authorizationv1.NonResourceRule{},
	}
	if evalErr != nil {
		status.Incomplete = true
		status.EvaluationError = evalErr.Error()
	}
	if _, isNode := authz.NodeIdentity(user); isNode {
		// What the Node authorizer grants depends on the objects asked
		// for; it cannot be listed, as upstream says.
		status.Incomplete = true
		status.EvaluationError = joinEvaluationErrors(status.EvaluationError, "node authorizer does not support user rule resolution")
	}
	for _, rule := range rules {
		if len(rule.NonResourceURLs) > 0 {
			status.NonResourceRules = append(status.NonResourceRules, authorizationv1.NonResourceRule{Verbs: rule.Verbs, NonResourceURLs: rule.NonResourceURLs})
			continue
		}
		status.ResourceRules = append(status.ResourceRules, authorizationv1.ResourceRule{
			Verbs: rule.Verbs, APIGroups: rule.APIGroups, Resources: rule.Resources, ResourceNames: rule.ResourceNames})
	}
	review.Status = status
	return review, nil
}

func joinEvaluationErrors(a, b string) string {
	if a == "" {
		return b
	}
	return fmt.Sprintf("%s, %s", a, b)
}
