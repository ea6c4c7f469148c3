// Package certificates serves certificates.k8s.io/v1
// CertificateSigningRequests as upstream: the server records the
// requestor, the spec never changes after create, /approval owns the
// Approved and Denied conditions and /status the certificate. Signing is
// a controller's job.
package certificates
