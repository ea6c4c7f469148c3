package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Names of the controller and of what it writes.
const (
	// Name is the controller's (upstream has no such controller).
	Name        = "cluster-dns-controller"
	Namespace   = metav1.NamespaceSystem
	ServiceName = "kube-dns"
	// ManagedBy marks the slices this controller owns, as upstream's
	// controllers mark theirs.
	ManagedBy = "clusterdns.tinykube.io"
	// Port is where every node's DNS server answers.
	Port = 53
)

// allKey stands for the whole desired state: the Service and every slice
// are computed together from the node list.
const allKey = "all"

// Config wires the controller.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// ClusterDNS is the Service's ClusterIP, inside the service CIDR.
	ClusterDNS netip.Addr
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller keeps kube-system/kube-dns and its per-node slices.
type Controller struct {
	client   kubernetes.Interface
	ip       netip.Addr
	nodes    corelisters.NodeLister
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	loop     workloop.Loop[string]
}

// New validates cfg and registers the event handlers; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New("clusterdns: Client and Informers are required")
	}
	if !cfg.ClusterDNS.IsValid() {
		return nil, errors.New("clusterdns: ClusterDNS is required")
	}
	nodes := cfg.Informers.Core().V1().Nodes()
	services := cfg.Informers.Core().V1().Services()
	slices := cfg.Informers.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:   cfg.Client,
		ip:       cfg.ClusterDNS,
		nodes:    nodes.Lister(),
		services: services.Lister(),
		slices:   slices.Lister(),
	}
	queue := workloop.NewQueue[string]("clusterdns", nil)
	c.loop = workloop.Loop[string]{
		Logger: cfg.Logger,
		// One worker: every sync computes the whole state.
		Workers: 1,
		KeyKind: "key",
		Queue:   queue,
		Synced:  []cache.InformerSynced{nodes.Informer().HasSynced, services.Informer().HasSynced, slices.Informer().HasSynced},
		Sync:    func(ctx context.Context, _ string) error { return c.sync(ctx) },
	}
	enqueue := func(any) { queue.Add(allKey) }
	onNode := cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(old, cur any) {
		o, n := old.(*corev1.Node), cur.(*corev1.Node)
		if o.Spec.PodCIDR != n.Spec.PodCIDR {
			queue.Add(allKey)
		}
	}, DeleteFunc: enqueue}
	ours := func(obj any) bool {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		m, err := metaOf(obj)
		return err == nil && m.GetNamespace() == Namespace &&
			(m.GetName() == ServiceName || m.GetLabels()[discoveryv1.LabelServiceName] == ServiceName)
	}
	onOurs := cache.FilteringResourceEventHandler{FilterFunc: ours, Handler: cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, cur any) { enqueue(cur) }, DeleteFunc: enqueue}}
	for _, reg := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{{nodes.Informer(), onNode}, {services.Informer(), onOurs}, {slices.Informer(), onOurs}} {
		if _, err := reg.inf.AddEventHandler(reg.h); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("clusterdns: unexpected %T", obj)
	}
	return m, nil
}

// Run reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	c.loop.Queue.Add(allKey)
	return c.loop.Run(ctx)
}

// desiredService is kube-dns as the controller keeps it.
func (c *Controller) desiredService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ServiceName,
			Namespace: Namespace,
			Labels: map[string]string{
				"k8s-app":                       "kube-dns",
				"kubernetes.io/cluster-service": "true",
				"kubernetes.io/name":            "KubeDNS",
			},
		},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			ClusterIP:  c.ip.String(),
			ClusterIPs: []string{c.ip.String()},
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: Port, TargetPort: intstr.FromInt32(Port)},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: Port, TargetPort: intstr.FromInt32(Port)},
			},
			// Each node answers its own pods' queries.
			InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyLocal),
		},
	}
}

func (c *Controller) sync(ctx context.Context) error {
	svc, err := c.ensureService(ctx)
	if err != nil {
		return err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	want := map[string]*discoveryv1.EndpointSlice{}
	for _, n := range nodes {
		if s := desiredSlice(svc, n); s != nil {
			want[s.Name] = s
		}
	}
	have, err := c.slices.EndpointSlices(Namespace).List(labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: ServiceName,
		discoveryv1.LabelManagedBy:   ManagedBy,
	}))
	if err != nil {
		return err
	}
	var errs []error
	slices := c.client.DiscoveryV1().EndpointSlices(Namespace)
	for _, s := range have {
		w, ok := want[s.Name]
		switch {
		case !ok:
			if err := slices.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		case !sameSlice(s, w):
			u := s.DeepCopy()
			u.Labels, u.OwnerReferences = w.Labels, w.OwnerReferences
			u.AddressType, u.Endpoints, u.Ports = w.AddressType, w.Endpoints, w.Ports
			if _, err := slices.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
				errs = append(errs, err)
			}
		}
		delete(want, s.Name)
	}
	for _, w := range want {
		if _, err := slices.Create(ctx, w, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ensureService creates kube-dns when it is missing and puts back what
// the DNS setup depends on when someone changed it.
func (c *Controller) ensureService(ctx context.Context) (*corev1.Service, error) {
	want := c.desiredService()
	svc, err := c.services.Services(Namespace).Get(ServiceName)
	if apierrors.IsNotFound(err) {
		created, err := c.client.CoreV1().Services(Namespace).Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("creating %s/%s at %s: %w", Namespace, ServiceName, c.ip, err)
		}
		return created, nil
	}
	if err != nil {
		return nil, err
	}
	if svc.Spec.ClusterIP != want.Spec.ClusterIP {
		// The ClusterIP cannot change in place; pods' resolv.conf names it.
		if err := c.client.CoreV1().Services(Namespace).Delete(ctx, ServiceName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &svc.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%s/%s had ClusterIP %s instead of %s: deleted to be recreated", Namespace, ServiceName, svc.Spec.ClusterIP, c.ip)
	}
	if len(svc.Spec.Selector) > 0 || !reflect.DeepEqual(svc.Spec.Ports, want.Spec.Ports) ||
		!reflect.DeepEqual(svc.Spec.InternalTrafficPolicy, want.Spec.InternalTrafficPolicy) || svc.Spec.Type != want.Spec.Type {
		u := svc.DeepCopy()
		u.Spec.Selector, u.Spec.Ports, u.Spec.InternalTrafficPolicy, u.Spec.Type = nil, want.Spec.Ports, want.Spec.InternalTrafficPolicy, want.Spec.Type
		return c.client.CoreV1().Services(Namespace).Update(ctx, u, metav1.UpdateOptions{})
	}
	return svc, nil
}

// desiredSlice is node n's DNS endpoint: the gateway of its pod CIDR, or
// nil while the node has no pod CIDR.
func desiredSlice(svc *corev1.Service, n *corev1.Node) *discoveryv1.EndpointSlice {
	cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil {
		return nil
	}
	gw := cidr.Masked().Addr().Next()
	family := discoveryv1.AddressTypeIPv4
	if gw.Is6() {
		family = discoveryv1.AddressTypeIPv6
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ServiceName + "-" + n.Name,
			Namespace: Namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: ServiceName,
				discoveryv1.LabelManagedBy:   ManagedBy,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		AddressType: family,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{gw.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(n.Name),
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To[int32](Port)},
			{Name: ptr.To("dns-tcp"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](Port)},
		},
	}
}

func sameSlice(have, want *discoveryv1.EndpointSlice) bool {
	return reflect.DeepEqual(have.Labels, want.Labels) && reflect.DeepEqual(have.OwnerReferences, want.OwnerReferences) &&
		have.AddressType == want.AddressType && reflect.DeepEqual(have.Endpoints, want.Endpoints) && reflect.DeepEqual(have.Ports, want.Ports)
}
