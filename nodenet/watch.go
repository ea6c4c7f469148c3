package nodenet

import (
	"context"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// watchKernel wakes the runner when the kernel changes what nodenet keeps,
// so that it is back as soon as it can be, not at the next resync:
//
//   - a change of the main routing table other than nodenet adding its own
//     routes: one of them deleted by hand, or the connected and default
//     routes that decide which nodes host-gw can reach;
//   - a link going up or down, appearing or going away: IPv4 drops the
//     routes through a link that goes down without a word on netlink, and
//     deleting the VXLAN device takes its routes and entries with it.
//
// The watchers stop when ctx ends; wait waits for them.
func (n *NodeNet) watchKernel(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		watch(ctx, n, "routes", func(ch chan<- netlink.RouteUpdate, done <-chan struct{}, onErr func(error)) error {
			return netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: n.netns, ErrorCallback: onErr})
		}, routeUpdateWakes)
	})
	wg.Go(func() {
		watch(ctx, n, "links", func(ch chan<- netlink.LinkUpdate, done <-chan struct{}, onErr func(error)) error {
			return netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: n.netns, ErrorCallback: onErr})
		}, linkUpdateWakes)
	})
	return wg.Wait
}

// watch subscribes to kernel updates and pokes the runner for those that
// wake it, until ctx ends. When the subscription ends (a full socket buffer
// loses updates) it pokes the runner and subscribes again; while it cannot
// subscribe, resyncs alone repair what others change.
func watch[U any](ctx context.Context, n *NodeNet, what string,
	subscribe func(ch chan<- U, done <-chan struct{}, onErr func(error)) error, wakes func(U) bool) {
	logger := klog.FromContext(ctx).WithName("nodenet")
	onErr := func(err error) { logger.V(2).Info("Kernel updates", "of", what, "err", err) }
	for {
		updates := make(chan U, 64)
		done := make(chan struct{})
		if err := subscribe(updates, done, onErr); err != nil {
			close(done)
			logger.Error(err, "Watching the kernel; only resyncs will repair what others change", "of", what)
			select {
			case <-ctx.Done():
				return
			case <-n.cfg.Clock.After(n.cfg.ResyncPeriod):
				continue
			}
		}
		stop := context.AfterFunc(ctx, func() { close(done) })
		for u := range updates {
			if wakes(u) {
				n.poke()
			}
		}
		if !stop() {
			return // ctx ended and closed done
		}
		close(done)
		n.poke() // updates may have been lost
		select { // a socket failing at once must not spin
		case <-ctx.Done():
			return
		case <-n.cfg.Clock.After(resubscribeDelay):
		}
	}
}

// resubscribeDelay is the pause before subscribing again after a
// subscription ended.
const resubscribeDelay = time.Second

func routeUpdateWakes(u netlink.RouteUpdate) bool {
	if u.Table != unix.RT_TABLE_MAIN || u.Family != netlink.FAMILY_V4 {
		return false
	}
	return u.Type != unix.RTM_NEWROUTE || u.Protocol != RouteProtocol
}

func linkUpdateWakes(u netlink.LinkUpdate) bool {
	return u.Header.Type == unix.RTM_DELLINK || u.Change&unix.IFF_UP != 0
}
