// Package authorization serves authorization.k8s.io/v1: the access
// reviews (self, subject, local and rules reviews), validated as upstream
// and answered by the server's authorizer through the Authorizer
// interface, never stored.
package authorization
