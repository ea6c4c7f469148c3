// Package agent runs a node: it joins a host to a cluster (the join
// token, the cluster CA checked against it, node certificates through
// certificate signing requests, kept renewed) and runs the node's
// components in order through one lifecycle group: node routing, the
// kubelet, the proxy and cluster DNS. `tinykube agent` runs all of it;
// `tinykube server` runs the node part for its own host.
package agent
