package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
)

// BGP unnumbered: a session over a port, to the one IPv6 link-local
// neighbour on it. The neighbour's address is found in the kernel's
// neighbour table (it sends router advertisements, as we do), and followed:
// a replaced peer or a port created anew changes it.

// follow starts router advertisements on an unnumbered port and the
// follower of its neighbour's address, once.
func (ps *peers) follow(port string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.announced[port] != nil {
		return
	}
	ctx, cancel := context.WithCancel(ps.ctx)
	ps.announced[port] = cancel
	if err := fastDAD(port); err != nil {
		ps.log.Warn("unnumbered port: fast duplicate address detection", "port", port, "err", err)
	}
	go advertiseRouter(ctx, port)
	go ps.followLinkLocal(ctx, port)
}

// reconcile gives unnumbered ports created anew the settings follow gave
// the old ones.
func (ps *peers) reconcile() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for port := range ps.announced {
		if _, err := netlink.LinkByName(port); err == nil {
			fastDAD(port)
		}
	}
}

// fastDAD shortens duplicate address detection on an unnumbered port from
// the kernel's 1-2 s (a random delay of up to router_solicitation_delay,
// then one probe waiting retrans_time) to one probe waiting 100 ms. Every
// time the link comes up its link-local address is tentative until DAD
// ends, and over a point-to-point link nothing gets through meanwhile: no
// neighbour resolution, so no forwarding through the port, and no BGP
// session. A duplicate still answers within 100 ms on one link. The
// retrans_time is also neighbour resolution's: with 30 probes instead of
// 3 it still gives up on a neighbour after 3 s, as by default (a live
// neighbour briefly FAILED would let a stale entry of a replaced one win
// in oneLinkLocalNeighbor).
func fastDAD(port string) error {
	neigh := "/proc/sys/net/ipv6/neigh/" + port + "/"
	for path, value := range map[string]string{
		"/proc/sys/net/ipv6/conf/" + port + "/router_solicitation_delay": "0",
		neigh + "retrans_time_ms": "100",
		neigh + "ucast_solicit":   "30",
		neigh + "mcast_solicit":   "30",
	} {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == value {
			continue
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// errNoNeighborYet: an unnumbered port has no single link-local
// neighbour (yet); its follower keeps looking.
var errNoNeighborYet = errors.New("no link-local neighbour yet")

// How often an unnumbered port's neighbour is looked for (one netlink
// dump): quickly while its session waits for it, so a neighbour that
// appears late has its session at once; then often enough that one that
// changes (a replaced peer, a port created anew) has it within seconds.
const (
	linkLocalSearch = 250 * time.Millisecond
	linkLocalPoll   = 2 * time.Second
)

// followLinkLocal re-points an unnumbered session when the neighbour's
// link-local address, or the port's own, changes (a replaced or renumbered
// peer, a port created anew): GoBGP only knows the addresses it was given.
// It also starts a configured session whose neighbour was not there yet.
// The netlink reads happen before ops is taken.
func (ps *peers) followLinkLocal(ctx context.Context, port string) {
	wait := linkLocalSearch
	addErr := "" // the last failure to add the session, logged once
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = linkLocalSearch
		ifc, err := net.InterfaceByName(port)
		if err != nil {
			continue
		}
		ll, err := oneLinkLocalNeighbor(ifc)
		if err != nil {
			// For the next round: a neighbour that is there answers; of
			// several, the kernel confirms the one that is there.
			pingAllNodes(ifc)
			probeNeighbors(ifc)
			continue
		}
		own := bgp.LinkLocal(port)
		if p, ok := ps.session(port); ok && p.Address == ll && (!own.IsValid() || p.LocalAddr == own) {
			wait = linkLocalPoll
			continue
		}
		if err := ps.repoint(ctx, port, ll, own); err != nil {
			if err.Error() != addErr { // retried every round: said once
				ps.log.Error("unnumbered neighbour found, its session not added; retrying", "port", port, "address", ll, "err", err)
			}
			addErr = err.Error()
		} else {
			addErr = ""
		}
	}
}

// repoint adds the session of an unnumbered port whose neighbour is at ll
// (we at own), or re-adds it when it had other addresses.
func (ps *peers) repoint(ctx context.Context, port string, ll, own netip.Addr) error {
	ps.ops.Lock()
	defer ps.ops.Unlock()
	ps.mu.Lock()
	cfg := ps.cfg
	p, ok := ps.sessions[port]
	ps.mu.Unlock()
	if cfg == nil || ctx.Err() != nil {
		return nil
	}
	n := cfg.Default.Neighbors[port]
	switch {
	case !ok && n != nil && n.Type == config.Unnumbered:
		// Configured, but its neighbour was not there at start.
		p, err := ps.peerFor(cfg, n)
		if err != nil {
			return err
		}
		if err := ps.speaker.AddPeer(ctx, p); err != nil {
			return err
		}
		ps.log.Info("unnumbered neighbour found", "port", port, "address", p.Address)
		ps.set(port, &p)
	case ok && (p.Address != ll || (own.IsValid() && p.LocalAddr != own)):
		ps.log.Info("unnumbered link-local addresses changed", "port", port, "was", p.Address, "now", ll, "own-was", p.LocalAddr, "own-now", own)
		if err := ps.speaker.DeletePeer(ctx, p); err != nil {
			ps.log.Warn("delete peer", "port", port, "err", err)
		}
		p.Address, p.LocalAddr = ll, own
		if err := ps.speaker.AddPeer(ctx, p); err != nil {
			ps.set(port, nil)
			return fmt.Errorf("re-add peer: %w", err)
		}
		ps.set(port, &p)
	default:
		return nil
	}
	// The Type-5-only filter knows peers by address.
	if err := ps.applyType5Only(ctx); err != nil {
		ps.log.Error("type-5-only policy", "err", err)
	}
	return nil
}

func oneLinkLocalNeighbor(ifc *net.Interface) (netip.Addr, error) {
	found, err := linkLocalNeighbors(ifc)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(found) > 1 {
		// A neighbour replaced or renumbered leaves its old entry behind
		// (STALE until the kernel collects it, a minute later): the one
		// entry confirmed lately is the neighbour.
		var confirmed []netip.Addr
		for _, n := range found {
			if n.state&(netlink.NUD_REACHABLE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0 {
				confirmed = append(confirmed, n.addr)
			}
		}
		if len(confirmed) == 1 {
			return confirmed[0], nil
		}
	}
	switch len(found) {
	case 0:
		return netip.Addr{}, fmt.Errorf("unnumbered %s: no IPv6 link-local neighbour", ifc.Name)
	case 1:
		return found[0].addr, nil
	}
	return netip.Addr{}, fmt.Errorf("unnumbered %s: %d link-local neighbours, want one (point-to-point)", ifc.Name, len(found))
}

// linkNeighbor is a link-local neighbour entry and its NUD state.
type linkNeighbor struct {
	addr  netip.Addr // zoned with the port
	state int
}

// linkLocalNeighbors lists ifc's IPv6 link-local neighbours that are not
// known to be dead, its own addresses left out.
func linkLocalNeighbors(ifc *net.Interface) ([]linkNeighbor, error) {
	neighs, err := netlink.NeighList(ifc.Index, netlink.FAMILY_V6)
	if err != nil {
		return nil, err
	}
	own := map[netip.Addr]bool{}
	if addrs, err := ifc.Addrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				own[p.Addr()] = true
			}
		}
	}
	var found []linkNeighbor
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		if ok && a.IsLinkLocalUnicast() && !own[a] && n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) == 0 {
			found = append(found, linkNeighbor{a.WithZone(ifc.Name), n.State})
		}
	}
	return found, nil
}

// probeNeighbors sends an echo to each of ifc's link-local neighbours, so
// the kernel confirms the one that is there (REACHABLE) and gives up on
// the others (FAILED) within seconds.
func probeNeighbors(ifc *net.Interface) {
	found, err := linkLocalNeighbors(ifc)
	if err != nil {
		return
	}
	for _, n := range found {
		echo(ifc, n.addr.WithZone("").String())
	}
}

// pingAllNodes sends one ICMPv6 echo to ff02::1 on ifc: the neighbour's
// answer puts it in the kernel's neighbour table.
func pingAllNodes(ifc *net.Interface) { echo(ifc, "ff02::1") }

// echo sends one ICMPv6 echo request to dst on ifc.
func echo(ifc *net.Interface, dst string) {
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::%"+ifc.Name)
	if err != nil {
		return
	}
	defer c.Close()
	msg := icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: 0x78, Seq: 1, Data: []byte("xleaf")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return
	}
	c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(dst), Zone: ifc.Name})
}
