package control

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
)

// rtprotBGP marks the kernel routes xleafd installs, as FRR's do.
const rtprotBGP = 186

// applyUnderlay advertises the default VRF's networks and, with
// redistribute connected, the addresses of its interfaces (the loopback:
// our VTEP). Called with a.mu held.
func (a *Agent) applyUnderlay(ctx context.Context, cfg *config.Config) {
	want := map[netip.Prefix]bool{}
	if cfg.Default.IPv4Unicast || len(cfg.Default.Networks) > 0 {
		for _, p := range cfg.Default.Networks {
			want[p] = true
		}
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
	for p := range a.underlay {
		if !want[p] {
			if err := a.bgp.AdvertiseIPv4(ctx, p, true); err != nil {
				a.log.Warn("withdraw underlay", "prefix", p, "err", err)
			}
			delete(a.underlay, p)
		}
	}
	for p := range want {
		if a.underlay[p] {
			continue
		}
		if err := a.bgp.AdvertiseIPv4(ctx, p, false); err != nil {
			a.log.Error("advertise underlay", "prefix", p, "err", err)
			continue
		}
		a.underlay[p] = true
	}
}

// installUnderlay puts a fabric route in the kernel's main table, so the
// data path's FIB lookup finds the remote VTEPs; xleaf needs no other
// routing daemon.
func (a *Agent) installUnderlay(e bgp.Event) {
	u := e.Underlay
	r := &netlink.Route{Dst: &net.IPNet{IP: u.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(u.Prefix.Bits(), 32)}, Protocol: rtprotBGP}
	nexthop := u.NextHop
	if nexthop.IsUnspecified() {
		// Some speakers send no usable next hop over an unnumbered
		// session; there the next hop is the neighbour itself.
		nexthop = netip.MustParseAddr(strings.SplitN(u.Peer, "%", 2)[0])
	}
	if nexthop.Is4() {
		r.Gw = nexthop.AsSlice()
	} else {
		// RFC 5549 (BGP unnumbered): via the peer's link-local address on
		// the session's interface.
		port := a.portOfPeer(u.Peer)
		link, err := netlink.LinkByName(port)
		if err != nil {
			a.log.Warn("underlay route via an unknown interface", "prefix", u.Prefix, "peer", u.Peer, "err", err)
			return
		}
		r.LinkIndex = link.Attrs().Index
		r.Via = &netlink.Via{AddrFamily: netlink.FAMILY_V6, Addr: nexthop.WithZone("").AsSlice()}
	}
	var err error
	if e.Withdraw {
		err = netlink.RouteDel(r)
	} else {
		err = netlink.RouteReplace(r)
	}
	if err != nil {
		a.log.Warn("kernel underlay route", "prefix", u.Prefix, "nexthop", u.NextHop, "peer", u.Peer, "withdraw", e.Withdraw, "err", err)
	}
}

// portOfPeer is the interface of an unnumbered session.
func (a *Agent) portOfPeer(peer string) string {
	if _, zone, ok := strings.Cut(peer, "%"); ok {
		return zone
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.peers {
		if p.Address.WithZone("").String() == peer {
			return p.Interface
		}
	}
	return ""
}
