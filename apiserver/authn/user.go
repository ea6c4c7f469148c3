package authn

import "context"

// Groups every authenticated user belongs to, and the identity of a request
// without a credential, as upstream names them.
const (
	GroupAuthenticated   = "system:authenticated"
	GroupUnauthenticated = "system:unauthenticated"
	UserAnonymous        = "system:anonymous"
)

// User is an authenticated identity.
type User struct {
	Name   string
	UID    string
	Groups []string
	// Extra is upstream's user.Info extra: for a service account token,
	// the pod and node it is bound to and the token's id.
	Extra map[string][]string
}

// userKey is the context key under which the User is stored; a private type
// so no other package can collide with it or forge it.
type userKey struct{}

// WithUser returns ctx carrying u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user the request was authenticated as; ok is false
// when the context never went through the authenticator.
func UserFrom(ctx context.Context) (u User, ok bool) {
	u, ok = ctx.Value(userKey{}).(User)
	return u, ok
}
