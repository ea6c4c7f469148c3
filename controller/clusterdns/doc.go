// Package clusterdns publishes the cluster DNS Service: kube-system/kube-dns
// at the cluster DNS address (10.43.0.10 by default, as k3s), and one
// EndpointSlice per node whose address is that node's DNS server. Upstream
// has no such controller; it runs as cluster-dns-controller.
//
// tinykube runs no CoreDNS pods: every node serves DNS in process (see
// proxy/dns), listening on its pod bridge's gateway address, the first
// address of the node's spec.podCIDR. The Service has no selector and
// internalTrafficPolicy Local, so the proxy sends a pod's queries to the DNS
// server of the pod's own node, and what users see (`kubectl get svc -n
// kube-system kube-dns`, nameserver 10.43.0.10 in pods) is what they know
// from other distributions. The controller keeps the Service and the slices
// as they should be: recreated when deleted, changed back when edited,
// following nodes as they come, change their pod CIDR and go.
package clusterdns
