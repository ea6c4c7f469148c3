package apiserver

import (
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAuthWhoamiAndCanI(t *testing.T) {
	ts := newTestServer(t)
	review, err := ts.client.AuthenticationV1().SelfSubjectReviews().Create(ctx(t), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || review.Status.UserInfo.Username != "system:anonymous" {
		t.Fatalf("whoami without authenticator: %v %+v", err, review)
	}
	access, err := ts.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx(t), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "delete", Resource: "pods"}},
	}, metav1.CreateOptions{})
	if err != nil || !access.Status.Allowed {
		t.Fatalf("can-i: %v %+v", err, access)
	}
	if resp := ts.do("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "", ""); resp.code != 405 {
		t.Fatalf("list of a create-only resource: %d", resp.code)
	}
}
