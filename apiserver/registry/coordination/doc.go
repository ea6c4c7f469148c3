// Package coordination serves coordination.k8s.io/v1: Leases (node
// heartbeats, leader election), with upstream's validation and table.
package coordination
