// Package pki owns the cluster's key material on disk: the cluster CA, the
// API server's serving certificate, the admin client certificate, and the
// admin kubeconfig built from them.
//
// Everything lives in one directory (DATA_DIR/server/tls), keys with mode
// 0600. [Ensure] is called on every start: the first start generates the
// material, later starts load and reuse it, so a kubeconfig handed out once
// keeps working. Only a leaf that no longer fits is issued again: a serving
// certificate whose SANs do not cover the addresses asked for (the node got
// a new address), or a leaf that is close to expiry. The CA is never
// replaced automatically, because every client trusts it.
package pki
