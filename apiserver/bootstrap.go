package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// systemNamespaces exist on every cluster.
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// Bootstrap creates what every cluster has: the system namespaces and the
// default RBAC policy, the `kubernetes` Service in default with its
// Endpoints and EndpointSlice
// pointing at AdvertiseAddress:SecurePort. It is idempotent: existing
// objects are kept (endpoints are brought up to date). It first frees
// ClusterIPs and node ports that no Service holds any more.
func (s *Server) Bootstrap(ctx context.Context) error {
	if err := s.repairAllocations(ctx); err != nil {
		return err
	}
	for _, name := range systemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := s.ensure(ctx, "namespaces", ns); err != nil {
			return err
		}
	}
	if err := s.ensureRBACPolicy(ctx); err != nil {
		return err
	}
	return s.ensureKubernetesService(ctx)
}

// ensureKubernetesService creates the `kubernetes` Service in default, and
// its Endpoints and EndpointSlice, unless they exist.
func (s *Server) ensureKubernetesService(ctx context.Context) error {
	ip := s.FirstServiceIP().String()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: ip,
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(s.cfg.SecurePort))}},
		},
	}
	if err := s.ensure(ctx, "services", svc.DeepCopy()); err != nil {
		// Someone asked for the first service IP explicitly: the
		// `kubernetes` Service then gets another one rather than the
		// server not starting.
		svc.Spec.ClusterIP = ""
		if err := s.ensure(ctx, "services", svc); err != nil {
			return err
		}
	}
	if !s.cfg.AdvertiseAddress.IsValid() {
		return nil
	}
	addr := s.cfg.AdvertiseAddress.String()
	port := int32(s.cfg.SecurePort)
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: addr}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}},
		}},
	}
	if err := s.ensureUpToDate(ctx, "endpoints", ep); err != nil {
		return err
	}
	family := discoveryv1.AddressTypeIPv4
	if s.cfg.AdvertiseAddress.Is6() {
		family = discoveryv1.AddressTypeIPv6
	}
	ready := true
	name, proto := "https", corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes", discoveryv1.LabelManagedBy: "tinykube-apiserver"}},
		AddressType: family,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	return s.ensureUpToDate(ctx, "endpointslices", slice)
}

func (s *Server) bootstrapResource(resource string) *registry.Resource {
	for _, gv := range s.resources.groups {
		if r, ok := s.resources.lookup(gv.WithResource(resource)); ok {
			return r
		}
	}
	return nil
}

// ensure creates obj unless it exists.
func (s *Server) ensure(ctx context.Context, resourceName string, obj runtime.Object) error {
	res := s.bootstrapResource(resourceName)
	m := accessor(obj)
	_, err := s.store.Get(ctx, storageKey(res, m.GetNamespace(), m.GetName()), 0)
	if err == nil {
		return nil
	}
	_, err = s.createObject(ctx, res, m.GetNamespace(), obj, false)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("apiserver: bootstrap %s %s/%s: %w", resourceName, m.GetNamespace(), m.GetName(), err)
	}
	return nil
}

// ensureUpToDate creates obj, or replaces the stored one's content with it.
func (s *Server) ensureUpToDate(ctx context.Context, resourceName string, obj runtime.Object) error {
	res := s.bootstrapResource(resourceName)
	m := accessor(obj)
	_, err := s.createObject(ctx, res, m.GetNamespace(), obj.DeepCopyObject(), false)
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("apiserver: bootstrap %s %s/%s: %w", resourceName, m.GetNamespace(), m.GetName(), err)
		}
		return nil
	}
	_, _, err = s.updateObject(ctx, updateRequest{
		res: res, namespace: m.GetNamespace(), name: m.GetName(),
		mutate: func(current runtime.Object) (runtime.Object, error) {
			desired := obj.DeepCopyObject()
			return desired, nil
		},
	})
	if err != nil {
		return fmt.Errorf("apiserver: bootstrap %s %s/%s: %w", resourceName, m.GetNamespace(), m.GetName(), err)
	}
	return nil
}
