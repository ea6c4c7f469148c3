// Package authentication serves authentication.k8s.io/v1
// SelfSubjectReviews: the identity the authenticator (package authn) put
// on the request, answered, never stored. TokenRequest is the
// serviceaccounts/token subresource of the generic server.
package authentication
