// Package csrsigning owns the signer of the CSR API for the kubelet
// signers, as upstream's
// certificatesigningrequest-signing-controller: it issues the certificate
// of every approved CertificateSigningRequest of
// kubernetes.io/kube-apiserver-client-kubelet (a kubelet's client
// certificate) and kubernetes.io/kubelet-serving (its HTTPS certificate)
// with the cluster CA, for the duration asked for (spec.expirationSeconds,
// at least 10 minutes) up to the signing duration, a year by default. A
// request that does not look like a kubelet's gets a Failed condition
// instead. Other signers' requests are left alone.
package csrsigning
