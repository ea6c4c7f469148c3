package containers

// Labels on every container, named as upstream's CRI names them.
const (
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelContainerName = "io.kubernetes.container.name"
	// LabelAttempt is the container's restart count when it was created.
	LabelAttempt = "tinykube.io/attempt"
	// LabelStartedAt is set once the task runs (RFC 3339, nanoseconds).
	LabelStartedAt = "tinykube.io/started-at"
	// LabelGracePeriod is the pod's termination grace period in seconds,
	// used to stop containers of pods the API no longer has.
	LabelGracePeriod = "io.kubernetes.pod.terminationGracePeriod"
	// LabelInit marks init containers.
	LabelInit = "tinykube.io/init"
)
