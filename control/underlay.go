package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
)

// The underlay part: the default VRF's own prefixes advertised to the
// fabric (the loopback: our VTEP), and the fabric's routes put in the
// kernel's main table, so the data path's FIB lookup finds the remote
// VTEPs; xleaf needs no other routing daemon.

// rtprotBGP marks the kernel routes xleafd installs, as FRR's do.
const rtprotBGP = 186

// underlaySpeaker is what the underlay part needs of BGP.
type underlaySpeaker interface {
	AdvertiseIPv4(ctx context.Context, p netip.Prefix, withdraw bool) error
}

// underlay owns the advertised prefixes and the kernel routes.
type underlay struct {
	log     *slog.Logger
	speaker underlaySpeaker
	kernel  *kernelRoutes
	portOf  func(peer string) string // an unnumbered session's port (the peers part)

	mu         sync.Mutex // guards advertised; held over the BGP calls of an apply
	advertised map[netip.Prefix]bool
}

func newUnderlay(log *slog.Logger, speaker underlaySpeaker, portOf func(string) string) *underlay {
	return &underlay{log: log, speaker: speaker, kernel: newKernelRoutes(log), portOf: portOf, advertised: map[netip.Prefix]bool{}}
}

// advertisedPrefixes is what cfg has the underlay advertise: the default
// VRF's networks and, with redistribute connected, the subnets of its
// interfaces.
func advertisedPrefixes(cfg *config.Config) map[netip.Prefix]bool {
	want := map[netip.Prefix]bool{}
	for _, p := range cfg.Default.Networks {
		want[p] = true
	}
	if cfg.Default.RedistributeConnected {
		for _, ifc := range cfg.Interfaces {
			if ifc.VRF != "" {
				continue // tenant or management
			}
			for _, p := range ifc.Addresses {
				if p.Addr().Is4() {
					want[p.Masked()] = true
				}
			}
		}
	}
	return want
}

// apply advertises what cfg asks and withdraws the rest.
func (u *underlay) apply(ctx context.Context, cfg *config.Config) {
	want := advertisedPrefixes(cfg)
	u.mu.Lock()
	defer u.mu.Unlock()
	for p := range u.advertised {
		if !want[p] {
			if err := u.speaker.AdvertiseIPv4(ctx, p, true); err != nil {
				u.log.Warn("withdraw underlay", "prefix", p, "err", err)
			}
			delete(u.advertised, p)
		}
	}
	for p := range want {
		if u.advertised[p] {
			continue
		}
		if err := u.speaker.AdvertiseIPv4(ctx, p, false); err != nil {
			u.log.Error("advertise underlay", "prefix", p, "err", err)
			continue
		}
		u.advertised[p] = true
	}
}

// received puts a fabric route BGP selected in the kernel, or takes a
// withdrawn one out.
func (u *underlay) received(e bgp.Event) {
	r := e.Underlay
	if e.Withdraw {
		u.kernel.del(r.Prefix)
		return
	}
	kr := kernelRoute{prefix: r.Prefix, via: r.NextHop}
	if kr.via.IsUnspecified() {
		// Some speakers send no usable next hop over an unnumbered
		// session; there the next hop is the neighbour itself.
		kr.via = netip.MustParseAddr(strings.SplitN(r.Peer, "%", 2)[0])
	}
	if !kr.via.Is4() {
		// RFC 5549 (BGP unnumbered): via the peer's link-local address on
		// the session's interface.
		kr.port = u.portOf(r.Peer)
		kr.via = kr.via.WithZone("")
		if kr.port == "" {
			u.log.Warn("underlay route via an unknown interface", "prefix", r.Prefix, "peer", r.Peer)
			return
		}
	}
	u.kernel.set(kr)
}

// kernelRoute is a fabric route as BGP selected it.
type kernelRoute struct {
	prefix netip.Prefix
	via    netip.Addr // IPv4, or an IPv6 link-local on port
	port   string     // for an IPv6 next hop
}

// kernelRoutes owns the fabric routes xleafd puts in the kernel's main
// table: what BGP selected is kept here, and put back whenever the kernel
// loses it (a link going down flushes every IPv4 route through it, and
// nothing puts them back when it comes up; someone may delete one).
type kernelRoutes struct {
	log *slog.Logger

	mu      sync.Mutex
	want    map[netip.Prefix]kernelRoute
	failing map[netip.Prefix]bool // logged once until it succeeds again
}

func newKernelRoutes(log *slog.Logger) *kernelRoutes {
	return &kernelRoutes{log: log, want: map[netip.Prefix]kernelRoute{}, failing: map[netip.Prefix]bool{}}
}

// netlinkRoute is r as the kernel takes it (an error while its port does
// not exist).
func (r kernelRoute) netlinkRoute() (*netlink.Route, error) {
	nr := &netlink.Route{Dst: &net.IPNet{IP: r.prefix.Addr().AsSlice(), Mask: net.CIDRMask(r.prefix.Bits(), 32)},
		Protocol: rtprotBGP, Table: unix.RT_TABLE_MAIN}
	if r.via.Is4() {
		nr.Gw = r.via.AsSlice()
		return nr, nil
	}
	link, err := netlink.LinkByName(r.port)
	if err != nil {
		return nil, err
	}
	nr.LinkIndex = link.Attrs().Index
	nr.Via = &netlink.Via{AddrFamily: netlink.FAMILY_V6, Addr: r.via.AsSlice()}
	return nr, nil
}

func (k *kernelRoutes) set(r kernelRoute) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.want[r.prefix] = r
	k.install(r)
}

func (k *kernelRoutes) del(p netip.Prefix) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r, ok := k.want[p]
	if !ok {
		return
	}
	delete(k.want, p)
	delete(k.failing, p)
	if nr, err := r.netlinkRoute(); err == nil {
		if err := netlink.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) {
			k.log.Warn("kernel underlay route", "prefix", p, "withdraw", true, "err", err)
		}
	}
}

// install puts r in the kernel. A failure (its link is down) is logged
// once; reconcile tries again. Called with k.mu held.
func (k *kernelRoutes) install(r kernelRoute) bool {
	nr, err := r.netlinkRoute()
	if err == nil {
		err = netlink.RouteReplace(nr)
	}
	if err != nil {
		if !k.failing[r.prefix] {
			k.log.Warn("kernel underlay route not installed; retried on link changes", "prefix", r.prefix, "via", r.via, "port", r.port, "err", err)
		}
		k.failing[r.prefix] = true
		return false
	}
	if k.failing[r.prefix] {
		k.log.Info("kernel underlay route installed", "prefix", r.prefix, "via", r.via, "port", r.port)
		delete(k.failing, r.prefix)
	}
	return true
}

// reconcile puts back every wanted route the kernel lacks or holds
// otherwise, and, with removeStale, removes routes of ours that BGP no
// longer selects (left by an earlier run: they forward until the grace
// period ends). It returns how many routes it changed.
func (k *kernelRoutes) reconcile(removeStale bool) (changed int, err error) {
	have, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: rtprotBGP, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return 0, fmt.Errorf("list kernel routes: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	seen := map[netip.Prefix]bool{}
	for _, h := range have {
		if h.Dst == nil {
			continue
		}
		p, ok := prefixOf(h.Dst)
		if !ok {
			continue
		}
		r, wanted := k.want[p]
		switch {
		case !wanted:
			if removeStale {
				if err := netlink.RouteDel(&h); err == nil {
					changed++
				}
			}
		case r.matches(h):
			seen[p] = true
		}
	}
	for p, r := range k.want {
		if !seen[p] && k.install(r) {
			changed++
		}
	}
	return changed, nil
}

// matches says whether the kernel's route h is r.
func (r kernelRoute) matches(h netlink.Route) bool {
	if r.via.Is4() {
		gw, ok := netip.AddrFromSlice(h.Gw)
		return ok && gw.Unmap() == r.via && h.Via == nil
	}
	if h.Via == nil {
		return false
	}
	via, ok := h.Via.(*netlink.Via)
	if !ok {
		return false
	}
	a, ok := netip.AddrFromSlice(via.Addr)
	link, err := netlink.LinkByIndex(h.LinkIndex)
	return ok && a == r.via && err == nil && link.Attrs().Name == r.port
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}
