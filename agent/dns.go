package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/tinykube/tinykube/proxy/dns"
)

// clusterDNS is the node's DNS server for the cluster domain. It listens
// on the gateway address of the node's pod bridge, where
// kube-system/kube-dns's slice for this node points, so it must wait for
// the node's pod CIDR; the address may not exist yet (the bridge comes with
// the first pod), hence IP_FREEBIND.
type clusterDNS struct {
	cfg       NodeConfig
	client    kubernetes.Interface
	informers informers.SharedInformerFactory
	ready     chan struct{}
}

func newClusterDNS(c NodeConfig, client kubernetes.Interface, f informers.SharedInformerFactory) (*clusterDNS, error) {
	if c.ClusterDomain == "" {
		return nil, errors.New("cluster DNS: ClusterDomain is required")
	}
	return &clusterDNS{cfg: c, client: client, informers: f, ready: make(chan struct{})}, nil
}

// run serves until ctx ends; ready closes once the server answers.
func (d *clusterDNS) run(ctx context.Context) error {
	gateway, err := d.podGateway(ctx)
	if err != nil {
		return err
	}
	lc := net.ListenConfig{Control: freeBind}
	s, err := dns.New(dns.Config{
		Informers: d.informers,
		Addr:      net.JoinHostPort(gateway.String(), "53"),
		Domain:    d.cfg.ClusterDomain,
		ListenPacket: func(network, address string) (net.PacketConn, error) {
			return lc.ListenPacket(ctx, network, address)
		},
		Listen: func(network, address string) (net.Listener, error) {
			return lc.Listen(ctx, network, address)
		},
	})
	if err != nil {
		return err
	}
	// The factory was started before this informer was asked for.
	d.informers.Start(ctx.Done())
	go func() {
		select {
		case <-s.Ready():
			close(d.ready)
		case <-ctx.Done():
		}
	}()
	if err := s.Run(ctx); err != nil {
		return fmt.Errorf("cluster DNS on %s: %w", gateway, err)
	}
	return nil
}

// podGateway waits for the node's pod CIDR and returns its first address,
// the pod bridge's.
func (d *clusterDNS) podGateway(ctx context.Context) (netip.Addr, error) {
	var gateway netip.Addr
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := d.client.CoreV1().Nodes().Get(ctx, d.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil {
			return false, nil
		}
		gateway = cidr.Masked().Addr().Next()
		return true, nil
	})
	return gateway, err
}

// freeBind lets a socket bind an address the host does not have yet.
func freeBind(network, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		level, opt := unix.IPPROTO_IP, unix.IP_FREEBIND
		if strings.HasSuffix(network, "6") {
			level, opt = unix.IPPROTO_IPV6, unix.IPV6_FREEBIND
		}
		serr = unix.SetsockoptInt(int(fd), level, opt, 1)
	})
	return errors.Join(err, serr)
}
