package nodenet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ourRoute is a route nodenet owns: main table, RouteProtocol.
func ourRoute(dst netip.Prefix) netlink.Route {
	return netlink.Route{
		Family:   netlink.FAMILY_V4,
		Table:    unix.RT_TABLE_MAIN,
		Protocol: RouteProtocol,
		Dst:      ipNet(dst),
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// syncRoutes makes nodenet's routes exactly want: routes with RouteProtocol
// that are not wanted, or differ from what is wanted, are replaced or
// removed; routes of other protocols are never touched (though RouteReplace
// would take over one with the same destination and metric).
func (n *NodeNet) syncRoutes(want []netlink.Route) error {
	have, err := n.nl.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: RouteProtocol},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("listing routes: %w", err)
	}
	wanted := map[string]*netlink.Route{}
	for i := range want {
		wanted[want[i].Dst.String()] = &want[i]
	}
	present := map[string]bool{}
	var errs []error
	for _, r := range have {
		key := r.Dst.String()
		w := wanted[key]
		switch {
		case w != nil && !present[key] && sameRoute(r, *w):
			present[key] = true
		case w != nil && r.Priority == w.Priority && r.Tos == w.Tos:
			// RouteReplace below rewrites this very route.
		default:
			if err := n.nl.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("deleting route %s: %w", key, err))
			}
		}
	}
	for i := range want {
		if present[want[i].Dst.String()] {
			continue
		}
		if err := n.nl.RouteReplace(&want[i]); err != nil {
			errs = append(errs, fmt.Errorf("adding route %s via %s: %w", want[i].Dst, want[i].Gw, err))
		}
	}
	return errors.Join(errs...)
}

// sameRoute reports whether the kernel's route have is the route want. A
// want without a link lets the kernel choose it.
func sameRoute(have, want netlink.Route) bool {
	onlink := int(netlink.FLAG_ONLINK)
	return have.Gw.Equal(want.Gw) &&
		(want.LinkIndex == 0 || have.LinkIndex == want.LinkIndex) &&
		have.Flags&onlink == want.Flags&onlink
}
