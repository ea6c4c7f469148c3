package admission

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// DefaultTolerationSeconds is upstream's admission plugin of that name:
// every new pod tolerates not-ready and unreachable nodes for a while,
// unless it says otherwise.
type DefaultTolerationSeconds struct {
	// NotReady and Unreachable are the tolerationSeconds of the
	// NoExecute tolerations of node.kubernetes.io/not-ready and
	// node.kubernetes.io/unreachable; 300 when nil.
	NotReady, Unreachable *int64
}

var _ Mutator = DefaultTolerationSeconds{}

// Name is the plugin's upstream name.
func (DefaultTolerationSeconds) Name() string { return "DefaultTolerationSeconds" }

// Admit adds the tolerations to a new pod.
func (d DefaultTolerationSeconds) Admit(_ context.Context, a *Attributes) error {
	if a.Operation != Create || a.Subresource != "" || a.Resource.GroupResource() != podsResource {
		return nil
	}
	addDefaultTolerations(&a.Object.(*corev1.Pod).Spec, map[string]*int64{
		corev1.TaintNodeNotReady:    d.NotReady,
		corev1.TaintNodeUnreachable: d.Unreachable,
	})
	return nil
}

// addDefaultTolerations adds what upstream's DefaultTolerationSeconds
// admission adds: tolerate not-ready and unreachable nodes for the
// configured seconds (300 when nil), unless the pod already tolerates them.
func addDefaultTolerations(spec *corev1.PodSpec, secondsByTaint map[string]*int64) {
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		found := false
		for _, t := range spec.Tolerations {
			if (t.Key == key || t.Key == "") && (t.Effect == corev1.TaintEffectNoExecute || t.Effect == "") {
				found = true
			}
		}
		if !found {
			s := int64(300)
			if configured := secondsByTaint[key]; configured != nil {
				s = *configured
			}
			spec.Tolerations = append(spec.Tolerations, corev1.Toleration{
				Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &s,
			})
		}
	}
}
