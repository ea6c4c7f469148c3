// Package batch serves batch/v1: Jobs and CronJobs, with upstream's
// defaults (the generated selector included), validation (the pod
// template through core's pod spec rules) and table columns. Jobs orphan
// their pods on a delete that names no propagation policy, as upstream.
package batch
