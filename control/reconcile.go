package control

import (
	"context"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// What xleafd puts in the kernel and the data path (fabric routes, port
// addresses, XDP on its ports, the data path's view of each port) is
// reconciled against what it wants on every kernel event that can undo
// it, and every reconcileInterval in case an event was missed, so a link
// flap of any length, a port created anew or a route someone deleted
// never leaves a path dead.

// reconcileInterval bounds how long something stays wrong that no event
// reported (a lost netlink message).
var reconcileInterval = 10 * time.Second // a test sets it

// reconcileDelay gathers a burst of events (a link going down takes its
// routes and addresses with it) into one pass.
const reconcileDelay = 50 * time.Millisecond

// watchKernel runs reconcile on link, address and route events and
// periodically, and restarts the BGP sessions of a port whose link-local
// address has become usable (its link came up), until ctx ends.
func (a *Agent) watchKernel(ctx context.Context) {
	tick := time.NewTicker(reconcileInterval)
	defer tick.Stop()
	for ctx.Err() == nil {
		sub, cancel := context.WithCancel(ctx)
		links, addrs, routes, err := subscribeKernel(sub, func(err error) {
			if sub.Err() == nil {
				a.log.Warn("kernel updates", "err", err)
			}
		})
		if err != nil {
			a.log.Warn("subscribe to kernel updates", "err", err)
		}
		// A pass now: an event may have been missed before (re)subscribing.
		a.reconcile(ctx)
		var due <-chan time.Time // a pass is pending
		for open := err == nil; open && ctx.Err() == nil; {
			want := false
			select {
			case <-ctx.Done():
			case <-tick.C:
				want = true
			case <-due:
				due = nil
				a.reconcile(ctx)
			case u, ok := <-links:
				open, want = ok, ok && a.ports.uses(u.Attrs().Name)
			case u, ok := <-addrs:
				open, want = ok, ok && a.addrChanged(ctx, u)
			case u, ok := <-routes:
				open, want = ok, ok && u.Type == unix.RTM_DELROUTE && u.Protocol == rtprotBGP
			}
			if want && due == nil {
				due = time.After(reconcileDelay)
			}
		}
		cancel()
		// netlink's receivers send without watching done: one blocked on
		// a full channel we no longer read would stay so for good. They
		// close their channels when they end.
		if err == nil {
			go drain(links)
			go drain(addrs)
			go drain(routes)
		}
		// A subscription ends on a receive error (ENOBUFS under churn).
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func drain[T any](ch chan T) {
	for range ch {
	}
}

func subscribeKernel(ctx context.Context, onErr func(error)) (chan netlink.LinkUpdate, chan netlink.AddrUpdate, chan netlink.RouteUpdate, error) {
	done := make(chan struct{})
	go func() { <-ctx.Done(); close(done) }()
	links, addrs, routes := make(chan netlink.LinkUpdate, 1024), make(chan netlink.AddrUpdate, 1024), make(chan netlink.RouteUpdate, 4096)
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{ErrorCallback: onErr}); err != nil {
		return nil, nil, nil, err
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: onErr}); err != nil {
		return nil, nil, nil, err
	}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ErrorCallback: onErr}); err != nil {
		return nil, nil, nil, err
	}
	return links, addrs, routes, nil
}

// addrChanged says whether a port's address change needs a pass (one was
// removed). When a port's link-local address has become usable, which is
// when a session over it can connect (its link came up), those of its
// sessions that are down are re-added now, out of any backoff (GoBGP
// dials a new peer within seconds) instead of at their next retry.
func (a *Agent) addrChanged(ctx context.Context, u netlink.AddrUpdate) bool {
	link, err := netlink.LinkByIndex(u.LinkIndex)
	if err != nil || !a.ports.uses(link.Attrs().Name) {
		return false
	}
	addr, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	if u.NewAddr && ok && addr.Is6() && addr.IsLinkLocalUnicast() && u.Flags&unix.IFA_F_TENTATIVE == 0 {
		a.peers.retryOn(ctx, link.Attrs().Name)
	}
	return !u.NewAddr
}

// reconcile puts back what the kernel or the data path lost: fabric
// routes, the configured addresses of ports, and the XDP program and the
// data path's entry of every attached port.
func (a *Agent) reconcile(ctx context.Context) {
	removeStale := a.restart.isOver()
	if n, err := a.underlay.kernel.reconcile(removeStale); err != nil {
		a.log.Warn("reconcile kernel routes", "err", err)
	} else if n > 0 {
		a.log.Info("kernel underlay routes restored", "routes", n)
	}
	a.ports.reconcile()
	a.peers.reconcile()
}
