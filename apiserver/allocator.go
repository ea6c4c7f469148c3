package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/registry/core"
	"github.com/tinykube/tinykube/storage"
)

// Allocations live in storage, one key per allocated value, so they
// survive restarts and two concurrent creates can never both win a value:
// the store's Create is the lock.
const (
	serviceIPKeyPrefix       = "/registry/core/serviceips/"
	serviceNodePortKeyPrefix = "/registry/core/servicenodeports/"
)

// allocationOwner is the value of an allocation key.
type allocationOwner struct {
	UID       types.UID `json:"uid"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
}

var errAllocated = errors.New("provided value is already allocated")

// ipAllocator hands out service IPs from a prefix, never the network
// address or (for IPv4) the broadcast address.
type ipAllocator struct {
	prefix netip.Prefix
	first  *big.Int // first usable address as a number
	size   int64    // number of usable addresses
}

func newIPAllocator(prefix netip.Prefix) (*ipAllocator, error) {
	hostBits := prefix.Addr().BitLen() - prefix.Bits()
	if hostBits < 2 {
		return nil, fmt.Errorf("apiserver: service CIDR %s is too small", prefix)
	}
	if hostBits > 62 {
		hostBits = 62
	}
	size := int64(1)<<hostBits - 2
	first := new(big.Int).SetBytes(prefix.Addr().AsSlice())
	first.Add(first, big.NewInt(1))
	return &ipAllocator{prefix: prefix, first: first, size: size}, nil
}

// nth returns the n-th usable address (0 is the first service IP).
func (a *ipAllocator) nth(n int64) netip.Addr {
	v := new(big.Int).Add(a.first, big.NewInt(n))
	b := v.FillBytes(make([]byte, a.prefix.Addr().BitLen()/8))
	addr, _ := netip.AddrFromSlice(b)
	return addr
}

func (a *ipAllocator) contains(ip netip.Addr) bool {
	if !a.prefix.Contains(ip) {
		return false
	}
	n := new(big.Int).Sub(new(big.Int).SetBytes(ip.AsSlice()), a.first)
	return n.Sign() >= 0 && n.Cmp(big.NewInt(a.size)) < 0
}

// portAllocator hands out node ports from a range.
type portAllocator struct{ r PortRange }

func newPortAllocator(r PortRange) *portAllocator { return &portAllocator{r: r} }

// FirstServiceIP is the ClusterIP of the `kubernetes` Service.
func (s *Server) FirstServiceIP() netip.Addr { return s.serviceIPs.nth(0) }

// claim records owner under key. Claiming a key the same object already
// owns succeeds, so retried updates are idempotent.
func (s *Server) claim(ctx context.Context, key string, owner allocationOwner, dryRun bool) error {
	if dryRun {
		kv, err := s.store.Get(ctx, key, 0)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return checkOwner(kv, owner)
	}
	value, _ := json.Marshal(owner)
	_, err := s.store.Create(ctx, key, value)
	if !errors.Is(err, storage.ErrAlreadyExists) {
		return err
	}
	kv, err := s.store.Get(ctx, key, 0)
	if err != nil {
		return err
	}
	return checkOwner(kv, owner)
}

func checkOwner(kv storage.KeyValue, owner allocationOwner) error {
	var current allocationOwner
	if err := json.Unmarshal(kv.Value, &current); err == nil && current.UID == owner.UID {
		return nil
	}
	return errAllocated
}

// release frees key if owner holds it.
func (s *Server) release(ctx context.Context, key string, owner allocationOwner) {
	kv, err := s.store.Get(ctx, key, 0)
	if err != nil {
		return
	}
	if checkOwner(kv, owner) != nil {
		return
	}
	_, _ = s.store.Delete(ctx, key, kv.ModRevision)
}

// claimRandom claims a free value among size candidates: random probes
// first, then a scan, so a nearly full range still finds its last value.
func (s *Server) claimRandom(ctx context.Context, size int64, keyOf func(int64) string, owner allocationOwner, dryRun bool) (int64, error) {
	for range 64 {
		n := rand.Int64N(size)
		err := s.claim(ctx, keyOf(n), owner, dryRun)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, errAllocated) {
			return 0, err
		}
	}
	start := rand.Int64N(size)
	for i := range size {
		n := (start + i) % size
		err := s.claim(ctx, keyOf(n), owner, dryRun)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, errAllocated) {
			return 0, err
		}
	}
	return 0, errors.New("range is full")
}

func ownerOf(svc *corev1.Service) allocationOwner {
	return allocationOwner{UID: svc.UID, Namespace: svc.Namespace, Name: svc.Name}
}

func ipKey(ip string) string { return serviceIPKeyPrefix + ip }

func portKey(port int32) string { return serviceNodePortKeyPrefix + strconv.Itoa(int(port)) }

// admitService allocates the Service's ClusterIP and node ports (random
// when omitted, the given ones when free and in range) and frees what an
// update dropped.
func (s *Server) admitService(ctx context.Context, obj, old runtime.Object, dryRun bool) error {
	svc := obj.(*corev1.Service)
	var oldSvc *corev1.Service
	if old != nil {
		oldSvc = old.(*corev1.Service)
	}
	owner := ownerOf(svc)
	spec := field.NewPath("spec")
	var errs field.ErrorList
	var claimed []string
	undo := func() {
		if !dryRun {
			for _, k := range claimed {
				s.release(ctx, k, owner)
			}
		}
	}

	if core.NeedsClusterIP(svc) {
		switch {
		case svc.Spec.ClusterIP == "":
			// The first address is kept for the `kubernetes` Service, so
			// a restart can always give it back.
			n, err := s.claimRandom(ctx, s.serviceIPs.size-1, func(n int64) string { return ipKey(s.serviceIPs.nth(n + 1).String()) }, owner, dryRun)
			if err != nil {
				return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %v", err))
			}
			ip := s.serviceIPs.nth(n + 1).String()
			claimed = append(claimed, ipKey(ip))
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
		case oldSvc == nil || oldSvc.Spec.ClusterIP != svc.Spec.ClusterIP:
			ip, _ := netip.ParseAddr(svc.Spec.ClusterIP)
			if !s.serviceIPs.contains(ip) {
				errs = append(errs, field.Invalid(spec.Child("clusterIPs"), svc.Spec.ClusterIPs,
					fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, ip, s.cfg.ServiceCIDR)))
				break
			}
			err := s.claim(ctx, ipKey(ip.String()), owner, dryRun)
			if errors.Is(err, errAllocated) {
				errs = append(errs, field.Invalid(spec.Child("clusterIPs"), svc.Spec.ClusterIPs,
					fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip)))
				break
			}
			if err != nil {
				undo()
				return apierrors.NewInternalError(err)
			}
			claimed = append(claimed, ipKey(ip.String()))
		}
	}

	oldPorts := map[int32]bool{}
	if oldSvc != nil && core.NeedsNodePorts(oldSvc) {
		for _, p := range oldSvc.Spec.Ports {
			oldPorts[p.NodePort] = true
		}
	}
	if core.NeedsNodePorts(svc) {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			path := spec.Child("ports").Index(i).Child("nodePort")
			switch {
			case p.NodePort == 0:
				n, err := s.claimRandom(ctx, int64(s.nodePorts.r.Size), func(n int64) string { return portKey(int32(s.nodePorts.r.Base) + int32(n)) }, owner, dryRun)
				if err != nil {
					undo()
					return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %v", err))
				}
				p.NodePort = int32(s.nodePorts.r.Base) + int32(n)
				claimed = append(claimed, portKey(p.NodePort))
			case oldPorts[p.NodePort]:
			case !s.nodePorts.r.Contains(int(p.NodePort)):
				errs = append(errs, field.Invalid(path, p.NodePort,
					fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", s.nodePorts.r)))
			default:
				err := s.claim(ctx, portKey(p.NodePort), owner, dryRun)
				if errors.Is(err, errAllocated) {
					errs = append(errs, field.Invalid(path, p.NodePort, "provided port is already allocated"))
					continue
				}
				if err != nil {
					undo()
					return apierrors.NewInternalError(err)
				}
				claimed = append(claimed, portKey(p.NodePort))
			}
		}
	}
	if core.NeedsHealthCheckNodePort(svc) {
		hc := svc.Spec.HealthCheckNodePort
		path := spec.Child("healthCheckNodePort")
		switch {
		case hc == 0 && oldSvc != nil && core.NeedsHealthCheckNodePort(oldSvc):
			svc.Spec.HealthCheckNodePort = oldSvc.Spec.HealthCheckNodePort
		case hc == 0:
			n, err := s.claimRandom(ctx, int64(s.nodePorts.r.Size), func(n int64) string { return portKey(int32(s.nodePorts.r.Base) + int32(n)) }, owner, dryRun)
			if err != nil {
				undo()
				return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %v", err))
			}
			svc.Spec.HealthCheckNodePort = int32(s.nodePorts.r.Base) + int32(n)
			claimed = append(claimed, portKey(svc.Spec.HealthCheckNodePort))
		case oldSvc != nil && oldSvc.Spec.HealthCheckNodePort == hc:
		case !s.nodePorts.r.Contains(int(hc)):
			errs = append(errs, field.Invalid(path, hc,
				fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", s.nodePorts.r)))
		default:
			err := s.claim(ctx, portKey(hc), owner, dryRun)
			if errors.Is(err, errAllocated) {
				errs = append(errs, field.Invalid(path, hc, "provided port is already allocated"))
			} else if err != nil {
				undo()
				return apierrors.NewInternalError(err)
			} else {
				claimed = append(claimed, portKey(hc))
			}
		}
	} else {
		svc.Spec.HealthCheckNodePort = 0
	}
	if len(errs) > 0 {
		undo()
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	if svc.Spec.Type != corev1.ServiceTypeExternalName && len(svc.Spec.IPFamilies) == 0 {
		family := corev1.IPv4Protocol
		if s.cfg.ServiceCIDR.Addr().Is6() {
			family = corev1.IPv6Protocol
		}
		svc.Spec.IPFamilies = []corev1.IPFamily{family}
	}
	if oldSvc != nil && !dryRun {
		s.releaseDropped(ctx, svc, oldSvc)
	}
	return nil
}

// releaseDropped frees what oldSvc held and svc no longer does.
func (s *Server) releaseDropped(ctx context.Context, svc, oldSvc *corev1.Service) {
	owner := ownerOf(oldSvc)
	if core.NeedsClusterIP(oldSvc) && oldSvc.Spec.ClusterIP != "" && (!core.NeedsClusterIP(svc) || svc.Spec.ClusterIP != oldSvc.Spec.ClusterIP) {
		s.release(ctx, ipKey(oldSvc.Spec.ClusterIP), owner)
	}
	keep := map[int32]bool{svc.Spec.HealthCheckNodePort: true}
	if core.NeedsNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			keep[p.NodePort] = true
		}
	}
	if hc := oldSvc.Spec.HealthCheckNodePort; hc != 0 && !keep[hc] {
		s.release(ctx, portKey(hc), owner)
	}
	for _, p := range oldSvc.Spec.Ports {
		if p.NodePort != 0 && !keep[p.NodePort] {
			s.release(ctx, portKey(p.NodePort), owner)
		}
	}
}

// releaseService frees everything a deleted Service held. A deleted
// `kubernetes` Service comes straight back, as upstream's endpoint
// reconciler brings it back.
func (s *Server) releaseService(ctx context.Context, obj runtime.Object) {
	svc := obj.(*corev1.Service)
	if svc.Namespace == metav1.NamespaceDefault && svc.Name == "kubernetes" {
		defer func() {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = s.ensureKubernetesService(ctx)
			}()
		}()
	}
	owner := ownerOf(svc)
	if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		s.release(ctx, ipKey(svc.Spec.ClusterIP), owner)
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			s.release(ctx, portKey(p.NodePort), owner)
		}
	}
	if hc := svc.Spec.HealthCheckNodePort; hc != 0 {
		s.release(ctx, portKey(hc), owner)
	}
}
