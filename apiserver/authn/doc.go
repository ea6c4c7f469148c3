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
// Deciding what a user may do (authorization) is not this package's job.
package authn
