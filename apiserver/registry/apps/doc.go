// Package apps serves apps/v1: Deployments, ReplicaSets, StatefulSets,
// DaemonSets and ControllerRevisions, with upstream's defaults, validation
// (the pod template through core's pod spec rules) and table columns. The
// scale subresource is the generic server's.
package apps
