// Package rootcacertpublisher owns the root CA certificate publisher: every
// namespace has a ConfigMap kube-root-ca.crt whose key ca.crt holds the
// cluster CA bundle (PEM), so pods can verify the API server at
// kubernetes.default.svc. It is created in new namespaces, recreated when
// deleted and restored when changed, as upstream's
// root-ca-certificate-publisher-controller.
package rootcacertpublisher
