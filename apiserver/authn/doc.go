// Package authn owns authentication at the API server's HTTP edge: who is
// calling. A request is authenticated, in this order, by a client
// certificate signed by the cluster CA, by a service account token (an
// ES256 JWT in upstream's format, see [ServiceAccountTokens]), or by a
// static bearer token (upstream's token file format, or in-memory tokens
// for in-process components); the result is a [User] in the request
// context, read with [UserFrom].
//
// A request with no credential gets upstream's 401 Unauthorized Status,
// except on the health and version paths that load balancers, probes and
// version checks call before they hold a credential. A credential that is
// present but wrong is refused everywhere, as upstream does: a client that
// sends one expects it to be checked.
//
// [ServiceAccountTokens] also issues the tokens (the API server's
// TokenRequest signs through it). A token may be bound to a pod, a secret
// or a node; it is refused once its service account or bound object is
// gone or was recreated, checked on every request through the configured
// lookup, so deleting a pod revokes its tokens at once.
//
// Deciding what a user may do (authorization) is not this package's job.
package authn
