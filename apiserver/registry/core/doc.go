// Package core serves the legacy API group, core/v1: pods, services,
// endpoints, namespaces, nodes, config maps, secrets, service accounts,
// events and bindings, with upstream's defaults, validation, field
// selectors and table columns.
//
// It also owns the pod spec rules every workload shares (DefaultPodSpec,
// ValidatePodSpec, ValidateVolumeSupport), which the apps and batch groups
// apply to their pod templates. What needs storage (bindings, ClusterIP
// and node port allocation, service account admission, event expiry) is
// the server's, given as fields of Group.
package core

import ()
