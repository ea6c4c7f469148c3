package endpointslicemirroring

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

type epBuilder struct{ e *corev1.Endpoints }

// makeEndpoints is an Endpoints object in "default" with no subsets.
func makeEndpoints(name string) epBuilder {
	return epBuilder{&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("ep-" + name)}}}
}

// subset adds a subset with the given ports (name:port/TCP) and addresses.
func (b epBuilder) subset(ready, notReady []string, ports ...corev1.EndpointPort) epBuilder {
	s := corev1.EndpointSubset{Ports: ports}
	for _, ip := range ready {
		s.Addresses = append(s.Addresses, corev1.EndpointAddress{IP: ip})
	}
	for _, ip := range notReady {
		s.NotReadyAddresses = append(s.NotReadyAddresses, corev1.EndpointAddress{IP: ip})
	}
	b.e.Subsets = append(b.e.Subsets, s)
	return b
}
func (b epBuilder) label(k, v string) epBuilder {
	if b.e.Labels == nil {
		b.e.Labels = map[string]string{}
	}
	b.e.Labels[k] = v
	return b
}
func (b epBuilder) annotation(k, v string) epBuilder {
	if b.e.Annotations == nil {
		b.e.Annotations = map[string]string{}
	}
	b.e.Annotations[k] = v
	return b
}
func (b epBuilder) obj() *corev1.Endpoints { return b.e }

func port(name string, n int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: n, Protocol: corev1.ProtocolTCP}
}

// makeService is a Service in "default" without a selector.
func makeService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("svc-" + name)},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
}

func withSelector(s *corev1.Service) *corev1.Service {
	s.Spec.Selector = map[string]string{"app": "web"}
	return s
}
