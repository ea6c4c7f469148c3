package apiserver

import (
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/authn"
)

var (
	authenticationV1 = authenticationv1.SchemeGroupVersion
	authorizationV1  = authorizationv1.SchemeGroupVersion
)

// selfSubjectReview answers `kubectl auth whoami` with the identity the
// authenticator put on the request.
func selfSubjectReview(r *http.Request, _ requestTarget, _ runtime.Object) (runtime.Object, error) {
	user, ok := authn.UserFrom(r.Context())
	if !ok {
		user = authn.User{Name: authn.UserAnonymous, Groups: []string{authn.GroupUnauthenticated}}
	}
	return &authenticationv1.SelfSubjectReview{
		TypeMeta:   metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "SelfSubjectReview"},
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Now()},
		Status: authenticationv1.SelfSubjectReviewStatus{UserInfo: authenticationv1.UserInfo{
			Username: user.Name, UID: user.UID, Groups: user.Groups,
		}},
	}, nil
}

// selfSubjectAccessReview answers `kubectl auth can-i`. Every
// authenticated request is allowed (there is no authorizer yet), and the
// answer says so.
func selfSubjectAccessReview(r *http.Request, _ requestTarget, obj runtime.Object) (runtime.Object, error) {
	review := obj.(*authorizationv1.SelfSubjectAccessReview)
	if review.Spec.ResourceAttributes == nil && review.Spec.NonResourceAttributes == nil {
		return nil, apierrors.NewInvalid(authorizationV1.WithKind("SelfSubjectAccessReview").GroupKind(), "",
			fieldErrors("spec.resourceAttributes", "null", "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
	}
	review.TypeMeta = metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectAccessReview"}
	review.Status = authorizationv1.SubjectAccessReviewStatus{
		Allowed: true,
		Reason:  "tinykube allows every authenticated request",
	}
	return review, nil
}
