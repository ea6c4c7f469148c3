package nodenet

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VXLANDevice is the vxlan backend's device, as flannel's flannel.1: VNI 1
// on UDP port 8472 (the Linux kernel's historical default, and flannel's),
// no learning (every forwarding entry is written from the Node objects).
const (
	VXLANDevice = "tinykube.1"
	vxlanVNI    = 1
	vxlanPort   = 8472
)

// VXLANMTU is the VXLAN device's MTU: 1500 less the 50 bytes of VXLAN, UDP,
// IP and inner Ethernet headers. With the vxlan backend, pods' interfaces
// (the kubelet's CNI bridge config) need it too.
const VXLANMTU = 1450

// ensureVXLAN creates or repairs the VXLAN device, sends its packets from
// NodeIP, and gives it the address own.Addr()/32: the node's VTEP address,
// which other nodes route this node's pods via.
func (n *NodeNet) ensureVXLAN(own netip.Prefix) (netlink.Link, error) {
	want := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: VXLANDevice, MTU: VXLANMTU},
		VxlanId:   vxlanVNI,
		Port:      vxlanPort,
		Learning:  false,
		SrcAddr:   n.cfg.NodeIP.AsSlice(),
	}
	vtepDev, err := n.linkWithAddr(n.cfg.NodeIP)
	if err != nil {
		return nil, err
	}
	want.VtepDevIndex = vtepDev
	link, err := n.nl.LinkByName(VXLANDevice)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		link = nil
	case err != nil:
		return nil, fmt.Errorf("looking up %s: %w", VXLANDevice, err)
	default:
		if have, ok := link.(*netlink.Vxlan); !ok || !sameVXLAN(have, want) {
			// Another VNI, port or address: recreate it rather than
			// change it under its neighbours.
			if err := n.nl.LinkDel(link); err != nil {
				return nil, fmt.Errorf("deleting incompatible %s: %w", VXLANDevice, err)
			}
			link = nil
		}
	}
	if link == nil {
		if err := n.nl.LinkAdd(want); err != nil {
			return nil, fmt.Errorf("creating %s: %w", VXLANDevice, err)
		}
		if link, err = n.nl.LinkByName(VXLANDevice); err != nil {
			return nil, err
		}
	}
	if link.Attrs().MTU != VXLANMTU {
		if err := n.nl.LinkSetMTU(link, VXLANMTU); err != nil {
			return nil, fmt.Errorf("setting the MTU of %s: %w", VXLANDevice, err)
		}
	}
	if err := n.ensureOnlyAddr(link, netip.PrefixFrom(own.Addr(), 32)); err != nil {
		return nil, err
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := n.nl.LinkSetUp(link); err != nil {
			return nil, fmt.Errorf("setting %s up: %w", VXLANDevice, err)
		}
	}
	return link, nil
}

func sameVXLAN(have, want *netlink.Vxlan) bool {
	return have.VxlanId == want.VxlanId && have.Port == want.Port && !have.Learning &&
		have.SrcAddr.Equal(want.SrcAddr) && have.VtepDevIndex == want.VtepDevIndex
}

// linkWithAddr is the index of the interface holding ip; 0 when none does
// (the node's address may be a NAT's, not its own).
func (n *NodeNet) linkWithAddr(ip netip.Addr) (int, error) {
	addrs, err := n.nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 0, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if a.IP.Equal(ip.AsSlice()) {
			return a.LinkIndex, nil
		}
	}
	return 0, nil
}

// ensureOnlyAddr leaves exactly the IPv4 address p on link.
func (n *NodeNet) ensureOnlyAddr(link netlink.Link, p netip.Prefix) error {
	addrs, err := n.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("listing addresses of %s: %w", link.Attrs().Name, err)
	}
	found := false
	for _, a := range addrs {
		if ones, _ := a.Mask.Size(); a.IP.Equal(p.Addr().AsSlice()) && ones == p.Bits() {
			found = true
			continue
		}
		if err := n.nl.AddrDel(link, &a); err != nil {
			return fmt.Errorf("removing %s from %s: %w", a.IPNet, link.Attrs().Name, err)
		}
	}
	if found {
		return nil
	}
	if err := n.nl.AddrAdd(link, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

// vxlanRoutes routes each peer's podCIDR via its VTEP address (its podCIDR's
// network address) on the VXLAN device. The address is on no subnet of this
// node, hence onlink.
func vxlanRoutes(dev netlink.Link, peers []peer) []netlink.Route {
	var routes []netlink.Route
	for _, p := range peers {
		r := ourRoute(p.podCIDR)
		r.LinkIndex = dev.Attrs().Index
		r.Gw = p.podCIDR.Addr().AsSlice()
		r.Flags = int(netlink.FLAG_ONLINK)
		routes = append(routes, r)
	}
	return routes
}

// syncNeighbours writes, on the VXLAN device, for each peer: the neighbour
// entry VTEP address -> VTEP MAC (no ARP crosses the tunnel) and the
// forwarding entry VTEP MAC -> public IP (where to send its frames), and
// removes every other entry: the device is nodenet's alone.
func (n *NodeNet) syncNeighbours(dev netlink.Link, peers []peer) error {
	idx := dev.Attrs().Index
	var neighbours, fdb []netlink.Neigh
	for _, p := range peers {
		neighbours = append(neighbours, netlink.Neigh{
			LinkIndex: idx, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			Type: unix.RTN_UNICAST, IP: p.podCIDR.Addr().AsSlice(), HardwareAddr: p.vtepMAC,
		})
		fdb = append(fdb, netlink.Neigh{
			LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT,
			IP: p.ip.AsSlice(), HardwareAddr: p.vtepMAC,
		})
	}
	// Neighbours are keyed by address, forwarding entries by MAC.
	byIP := func(nb netlink.Neigh) string { return nb.IP.String() }
	byMAC := func(nb netlink.Neigh) string { return nb.HardwareAddr.String() }
	return errors.Join(
		n.syncNeighs(idx, netlink.FAMILY_V4, neighbours, byIP),
		n.syncNeighs(idx, unix.AF_BRIDGE, fdb, byMAC),
	)
}

// syncNeighs makes the entries of family on link idx exactly want.
func (n *NodeNet) syncNeighs(idx, family int, want []netlink.Neigh, key func(netlink.Neigh) string) error {
	have, err := n.nl.NeighList(idx, family)
	if err != nil {
		return fmt.Errorf("listing neighbours of %s: %w", VXLANDevice, err)
	}
	wanted := map[string]netlink.Neigh{}
	for _, nb := range want {
		wanted[key(nb)] = nb
	}
	present := map[string]bool{}
	var errs []error
	for _, nb := range have {
		if nb.LinkIndex != idx {
			continue
		}
		w, ok := wanted[key(nb)]
		if ok && nb.State == netlink.NUD_PERMANENT && nb.IP.Equal(w.IP) && bytes.Equal(nb.HardwareAddr, w.HardwareAddr) {
			present[key(nb)] = true
			continue
		}
		if ok {
			continue // NeighSet below replaces it
		}
		nb.Family = family
		if family == unix.AF_BRIDGE {
			nb.Flags |= netlink.NTF_SELF
		}
		if err := n.nl.NeighDel(&nb); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("deleting neighbour %s on %s: %w", nb.String(), VXLANDevice, err))
		}
	}
	for _, nb := range want {
		if present[key(nb)] {
			continue
		}
		if err := n.nl.NeighSet(&nb); err != nil {
			errs = append(errs, fmt.Errorf("setting neighbour %s on %s: %w", nb.String(), VXLANDevice, err))
		}
	}
	return errors.Join(errs...)
}

// deleteVXLAN removes the VXLAN device (and with it its routes and
// neighbours), if there is one.
func (n *NodeNet) deleteVXLAN() error {
	link, err := n.nl.LinkByName(VXLANDevice)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s: %w", VXLANDevice, err)
	}
	if err := n.nl.LinkDel(link); err != nil {
		return fmt.Errorf("deleting %s: %w", VXLANDevice, err)
	}
	return nil
}
