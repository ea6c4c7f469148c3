// Package nodeipam owns the node IPAM controller: it gives every Node a
// spec.podCIDR (and spec.podCIDRs) cut from the cluster CIDR, never the
// same range to two nodes, and takes a range back when its node is
// deleted. The allocation lives only in memory and is rebuilt from the
// Nodes at start, as upstream's range allocator does.
package nodeipam
