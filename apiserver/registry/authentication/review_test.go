package authentication

import (
	"net/http"
	"net/http/httptest"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// kubectl auth whoami shows a service account token's extra fields (the
// pod and node it is bound to), as upstream.
func TestSelfSubjectReviewCarriesExtra(t *testing.T) {
	user := authn.User{Name: "system:serviceaccount:default:default", Groups: []string{"system:serviceaccounts"},
		Extra: map[string][]string{"authentication.kubernetes.io/pod-name": {"web"}}}
	r := httptest.NewRequest(http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", nil)
	r = r.WithContext(authn.WithUser(r.Context(), user))
	obj, err := selfSubjectReview(r, "", &authenticationv1.SelfSubjectReview{})
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*authenticationv1.SelfSubjectReview).Status.UserInfo.Extra
	if v := got["authentication.kubernetes.io/pod-name"]; len(v) != 1 || v[0] != "web" {
		t.Fatalf("extra %v", got)
	}
}
