// Package job is the Job controller, as upstream's job-controller for the
// NonIndexed and Indexed completion modes.
//
// It owns: creating a Job's pods from its template up to parallelism
// (generateName "<job>-", or "<job>-<index>-" with the completion index
// annotation, label and hostname for Indexed Jobs), each with a
// controller ownerReference and the batch.kubernetes.io/job-tracking
// finalizer; counting finished pods through status.uncountedTerminatedPods
// before removing that finalizer, so counts survive pod deletion;
// backoffLimit with exponential back-off before failed pods are
// replaced; activeDeadlineSeconds; suspend and resume; the
// SuccessCriteriaMet / FailureTarget conditions and then Complete /
// Failed once no pod is left running; startTime, completionTime, ready
// and terminating; and deleting finished Jobs once their
// ttlSecondsAfterFinished has passed (upstream's
// ttl-after-finished-controller).
//
// It runs pod failure policies' FailJob, Ignore and Count actions
// (FailIndex counts, since backoffLimitPerIndex is not supported). It
// does not own success policies or backoffLimitPerIndex (such Jobs run
// as if they had none), nor garbage collection of the pods of a deleted
// Job (the garbage collector does).
package job
