package authentication

import (
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/registry"
)

var authenticationV1 = authenticationv1.SchemeGroupVersion

// Group serves authentication.k8s.io/v1.
type Group struct{}

// Resources are the SelfSubjectReviews (kubectl auth whoami); nothing is
// stored.
func (Group) Resources(registry.Config) []*registry.Resource {
	return []*registry.Resource{{GVR: authenticationV1.WithResource("selfsubjectreviews"), Kind: "SelfSubjectReview", Singular: "selfsubjectreview",
		CreateOnly: selfSubjectReview}}
}

// selfSubjectReview answers `kubectl auth whoami` with the identity the
// authenticator put on the request.
func selfSubjectReview(r *http.Request, _ string, _ runtime.Object) (runtime.Object, error) {
	user, ok := authn.UserFrom(r.Context())
	if !ok {
		user = authn.User{Name: authn.UserAnonymous, Groups: []string{authn.GroupUnauthenticated}}
	}
	var extra map[string]authenticationv1.ExtraValue
	for k, v := range user.Extra {
		if extra == nil {
			extra = map[string]authenticationv1.ExtraValue{}
		}
		extra[k] = v
	}
	return &authenticationv1.SelfSubjectReview{
		TypeMeta:   metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "SelfSubjectReview"},
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Now()},
		Status: authenticationv1.SelfSubjectReviewStatus{UserInfo: authenticationv1.UserInfo{
			Username: user.Name, UID: user.UID, Groups: user.Groups, Extra: extra,
		}},
	}, nil
}
