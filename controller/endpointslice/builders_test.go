package endpointslice

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type podBuilder struct{ p *corev1.Pod }

// makePod is a pod labelled app=web with a container port named http
// (8080), no IP and not ready.
func makePod(name string) podBuilder {
	return podBuilder{&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}}
}
func (b podBuilder) ip(ip string) podBuilder {
	b.p.Status.PodIP, b.p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	b.p.Status.Phase = corev1.PodRunning
	return b
}
func (b podBuilder) node(n string) podBuilder { b.p.Spec.NodeName = n; return b }
func (b podBuilder) ready(r bool) podBuilder {
	s := corev1.ConditionFalse
	if r {
		s = corev1.ConditionTrue
	}
	b.p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: s}}
	return b
}
func (b podBuilder) labels(l map[string]string) podBuilder { b.p.Labels = l; return b }
func (b podBuilder) terminating() podBuilder {
	now := metav1.Now()
	b.p.DeletionTimestamp = &now
	return b
}
func (b podBuilder) phase(p corev1.PodPhase) podBuilder { b.p.Status.Phase = p; return b }
func (b podBuilder) obj() *corev1.Pod                   { return b.p }

type svcBuilder struct{ s *corev1.Service }

// makeService selects app=web, port 80 -> targetPort "http".
func makeService(name string) svcBuilder {
	return svcBuilder{&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.ServiceSpec{
			Selector:   map[string]string{"app": "web"},
			ClusterIP:  "10.43.0.10",
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports:      []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}},
		},
	}}
}
func (b svcBuilder) ports(p ...corev1.ServicePort) svcBuilder { b.s.Spec.Ports = p; return b }
func (b svcBuilder) publishNotReady() svcBuilder {
	b.s.Spec.PublishNotReadyAddresses = true
	return b
}
func (b svcBuilder) obj() *corev1.Service { return b.s }

func makeNode(name, zone string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelTopologyZone: zone}}}
}
