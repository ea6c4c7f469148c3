// Package policy serves policy/v1 PodDisruptionBudgets, with upstream's
// validation and table. The pods/eviction subresource that spends their
// disruptions needs storage and lives in the generic server
// (subresource_eviction.go).
package policy
