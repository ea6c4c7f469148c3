// Package nodeipam owns the node IPAM controller (upstream's
// node-ipam-controller with its range allocator): it gives every Node a
// spec.podCIDR (and spec.podCIDRs) cut from the cluster CIDR, never the
// same range to two nodes, and takes a range back when its node is
// deleted. The allocation lives only in memory and is rebuilt from the
// Nodes at start (the work loop's pre-start hook, before any node is given
// a range), as upstream's range allocator does. Single-stack: podCIDRs
// holds the one range.
package nodeipam
