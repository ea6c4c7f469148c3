// Package proxy turns Services and EndpointSlices into one nftables ruleset
// per node, applied atomically (ClusterIP, NodePort, LoadBalancer), and serves
// cluster DNS. It is a client-go client of the API.
package proxy
