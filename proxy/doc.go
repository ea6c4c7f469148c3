// Package proxy is tinykube's service proxy, kube-proxy's nftables mode in
// miniature. It owns one nftables table, "inet tinykube", on every node and
// turns Services and EndpointSlices into that table's ruleset: ClusterIP,
// NodePort (on every node address, narrowed by NodePortAddresses, and on
// 127.0.0.1 for locally generated traffic), LoadBalancer ingress and external
// IPs, session affinity, externalTrafficPolicy and internalTrafficPolicy
// Local, masquerading, rejection of Services without endpoints and dropping
// of unallocated service addresses. It also serves healthCheckNodePort for
// externalTrafficPolicy Local Services.
//
// Event handlers only record which Services changed; one rate-limited runner
// computes the rules of the changed Services and applies the difference to the
// kernel in one nftables transaction (a partial sync). The first sync, and any
// sync after a failed one, rebuilds the whole table atomically (a full sync).
// README.md beside this file explains every chain, set and map.
//
// Cluster DNS lives in proxy/dns, the ServiceLB-style LoadBalancer status
// controller in controller/servicelb. Pod networking is not this package's job.
package proxy
