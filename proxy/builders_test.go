package proxy

import (
	"strconv"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/knftables"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// svcBuilder builds test Services: makeService("ns", "web").clusterIP(...).obj().
type svcBuilder struct{ s *corev1.Service }

func makeService(ns, name string) *svcBuilder {
	return &svcBuilder{&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeClusterIP,
			SessionAffinity:       corev1.ServiceAffinityNone,
			InternalTrafficPolicy: ptr(corev1.ServiceInternalTrafficPolicyCluster),
		},
	}}
}

func (b *svcBuilder) clusterIP(ip string) *svcBuilder {
	b.s.Spec.ClusterIP, b.s.Spec.ClusterIPs = ip, []string{ip}
	return b
}

// port adds a TCP port; nodePort 0 leaves it out.
func (b *svcBuilder) port(name string, port, target, nodePort int32) *svcBuilder {
	b.s.Spec.Ports = append(b.s.Spec.Ports, corev1.ServicePort{
		Name: name, Protocol: corev1.ProtocolTCP, Port: port,
		TargetPort: intstr.FromInt32(target), NodePort: nodePort,
	})
	return b
}

func (b *svcBuilder) udpPort(name string, port, target int32) *svcBuilder {
	b.s.Spec.Ports = append(b.s.Spec.Ports, corev1.ServicePort{
		Name: name, Protocol: corev1.ProtocolUDP, Port: port, TargetPort: intstr.FromInt32(target),
	})
	return b
}

func (b *svcBuilder) typ(t corev1.ServiceType) *svcBuilder {
	b.s.Spec.Type = t
	if t != corev1.ServiceTypeClusterIP {
		b.s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	return b
}

func (b *svcBuilder) affinity(seconds int32) *svcBuilder {
	b.s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	b.s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &seconds}}
	return b
}

func (b *svcBuilder) externalLocal(healthCheckNodePort int32) *svcBuilder {
	b.s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	b.s.Spec.HealthCheckNodePort = healthCheckNodePort
	return b
}

func (b *svcBuilder) internalLocal() *svcBuilder {
	b.s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
	return b
}

func (b *svcBuilder) ingress(ips ...string) *svcBuilder {
	for _, ip := range ips {
		b.s.Status.LoadBalancer.Ingress = append(b.s.Status.LoadBalancer.Ingress,
			corev1.LoadBalancerIngress{IP: ip, IPMode: ptr(corev1.LoadBalancerIPModeVIP)})
	}
	return b
}

func (b *svcBuilder) obj() *corev1.Service { return b.s.DeepCopy() }

// sliceBuilder builds EndpointSlices for a Service.
type sliceBuilder struct{ s *discoveryv1.EndpointSlice }

func makeSlice(ns, service, name string) *sliceBuilder {
	return &sliceBuilder{&discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
	}}
}

func (b *sliceBuilder) port(name string, port int32) *sliceBuilder {
	b.s.Ports = append(b.s.Ports, discoveryv1.EndpointPort{
		Name: ptr(name), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(port),
	})
	return b
}

func (b *sliceBuilder) udpPort(name string, port int32) *sliceBuilder {
	b.s.Ports = append(b.s.Ports, discoveryv1.EndpointPort{
		Name: ptr(name), Protocol: ptr(corev1.ProtocolUDP), Port: ptr(port),
	})
	return b
}

// endpoint adds a ready endpoint on node.
func (b *sliceBuilder) endpoint(ip, node string) *sliceBuilder {
	b.s.Endpoints = append(b.s.Endpoints, discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)},
		NodeName:   ptr(node),
	})
	return b
}

// notReady adds an endpoint that fails its readiness probe.
func (b *sliceBuilder) notReady(ip, node string) *sliceBuilder {
	b.s.Endpoints = append(b.s.Endpoints, discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(false), Terminating: ptr(false)},
		NodeName:   ptr(node),
	})
	return b
}

// endpoints adds n ready endpoints 10.42.<i/250>.<i%250+1>.
func (b *sliceBuilder) endpoints(base, n int, node string) *sliceBuilder {
	for i := base; i < base+n; i++ {
		b.endpoint("10.42."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250+1), node)
	}
	return b
}

func (b *sliceBuilder) obj() *discoveryv1.EndpointSlice { return b.s.DeepCopy() }

func ptr[T any](v T) *T { return &v }

func itoa(i int) string { return strconv.Itoa(i) }

func equalish(a, b any) bool { return equality.Semantic.DeepEqual(a, b) }

var knftablesTable = knftables.Table{}
