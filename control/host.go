package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/config"
)

// ensureAddresses gives a port the addresses the configuration names, and
// brings it up.
func ensureAddresses(port string, ifc *config.Interface) error {
	if ifc == nil || len(ifc.Addresses) == 0 {
		return nil
	}
	if err := setAddresses(port, ifc); err != nil {
		return err
	}
	l, err := netlink.LinkByName(port)
	if err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("interface %s: up: %w", port, err)
	}
	return nil
}

// setAddresses adds those of the configured addresses a port lacks.
func setAddresses(port string, ifc *config.Interface) error {
	if ifc == nil || len(ifc.Addresses) == 0 {
		return nil
	}
	l, err := netlink.LinkByName(port)
	if err != nil {
		return fmt.Errorf("interface %s: %w", port, err)
	}
	have, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("interface %s: addresses: %w", port, err)
	}
	for _, p := range ifc.Addresses {
		if slices.ContainsFunc(have, func(a netlink.Addr) bool { return a.IPNet.String() == p.String() }) {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if err := netlink.AddrReplace(l, addr); err != nil {
			return fmt.Errorf("interface %s: address %v: %w", port, p, err)
		}
	}
	return nil
}

// systemMAC is the router MAC when none is configured: eth0's, as on a
// Cumulus switch, else the first configured port's.
func systemMAC(cfg *config.Config) (net.HardwareAddr, error) {
	names := []string{"eth0"}
	for name := range cfg.Interfaces {
		names = append(names, name)
	}
	for _, name := range names {
		if ifc, err := net.InterfaceByName(name); err == nil && len(ifc.HardwareAddr) == 6 {
			return ifc.HardwareAddr, nil
		}
	}
	return nil, errors.New("no system MAC: no eth0 and no configured port with a MAC; set one with --router-mac")
}

// portTowards is the interface the kernel would use to reach addr: the
// fabric port of a numbered neighbour ("" if the address is our own).
func (a *Agent) portTowards(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	routes, err := netlink.RouteGet(ip.AsSlice())
	if err != nil || len(routes) == 0 {
		return ""
	}
	l, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil || l.Attrs().Flags&net.FlagLoopback != 0 {
		return ""
	}
	return l.Attrs().Name
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

// peerFor turns a configured neighbour into a session.
func (a *Agent) peerFor(ctx context.Context, cfg *config.Config, n *config.Neighbor) (bgp.Peer, error) {
	g := cfg.Default.PeerGroups[n.PeerGroup]
	p := bgp.Peer{IPv4: cfg.Default.IPv4Unicast, EVPN: cfg.Default.L2VPNEVPN, ConnectRetry: 5, HoldTime: 9}
	if g != nil {
		p.IPv4, p.EVPN = g.IPv4Unicast, g.L2VPNEVPN
		p.HoldTime, p.Keepalive = cmp.Or(g.HoldTime, p.HoldTime), g.Keepalive
	}
	ras := cfg.Default.NeighborRemoteAS(n)
	switch ras.Kind {
	case "external":
		p.ASN = 0 // any AS but ours
	case "internal":
		p.ASN = cfg.ASN
	case "number":
		p.ASN = ras.ASN
	default:
		return p, fmt.Errorf("neighbor %s: no remote-as", n.Name)
	}
	if n.Type == "unnumbered" {
		a.announce(n.Name)
		ifc, err := net.InterfaceByName(n.Name)
		if err != nil {
			return p, fmt.Errorf("unnumbered %s: %w", n.Name, err)
		}
		// Not waited for (a.mu is held): followLinkLocal starts the
		// session when the neighbour appears.
		ll, err := oneLinkLocalNeighbor(ifc)
		if err != nil {
			pingAllNodes(ifc)
			return p, fmt.Errorf("%w: %v", errNoNeighborYet, err)
		}
		p.Address, p.Interface, p.LocalAddr = ll, n.Name, bgp.LinkLocal(n.Name)
		return p, nil
	}
	addr, err := netip.ParseAddr(n.Name)
	if err != nil {
		return p, fmt.Errorf("neighbor %s: %w", n.Name, err)
	}
	p.Address = addr
	return p, nil
}

// announce starts router advertisements on an unnumbered port, and the
// watch of its neighbour's address, once.
func (a *Agent) announce(port string) {
	if a.announced[port] != nil {
		return
	}
	ctx, cancel := context.WithCancel(a.ctx)
	a.announced[port] = cancel
	if err := fastDAD(port); err != nil {
		a.log.Warn("unnumbered port: fast duplicate address detection", "port", port, "err", err)
	}
	go advertiseRouter(ctx, port)
	go a.followLinkLocal(ctx, port)
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

// unannounce stops announce's router advertisements and link-local
// following on a port that no longer has an unnumbered neighbour.
func (a *Agent) unannounce(port string) {
	if cancel := a.announced[port]; cancel != nil {
		cancel()
		delete(a.announced, port)
	}
}

// errNoNeighborYet: an unnumbered port has no single link-local
// neighbour (yet); followLinkLocal keeps looking.
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
func (a *Agent) followLinkLocal(ctx context.Context, port string) {
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
		a.mu.Lock()
		p, ok := a.peers[port]
		if ok && p.Address == ll {
			wait = linkLocalPoll
		}
		n := a.cfg.Default.Neighbors[port]
		switch {
		case !ok && n != nil && n.Type == "unnumbered":
			// Configured, but its neighbour was not there at start.
			if p, err := a.peerFor(ctx, a.cfg, n); err == nil {
				if err := a.bgp.AddPeer(ctx, p); err != nil {
					if err.Error() != addErr { // retried every round: said once
						a.log.Error("unnumbered neighbour found, its session not added; retrying", "port", port, "address", p.Address, "err", err)
					}
					addErr = err.Error()
				} else {
					addErr = ""
					a.log.Info("unnumbered neighbour found", "port", port, "address", p.Address)
					a.peers[port] = p
					a.applyType5Only(ctx, a.cfg)
				}
			}
		case ok && (p.Address != ll || (own.IsValid() && p.LocalAddr != own)):
			a.log.Info("unnumbered link-local addresses changed", "port", port, "was", p.Address, "now", ll, "own-was", p.LocalAddr, "own-now", own)
			if err := a.bgp.DeletePeer(ctx, p); err != nil {
				a.log.Warn("delete peer", "port", port, "err", err)
			}
			p.Address, p.LocalAddr = ll, own
			if err := a.bgp.AddPeer(ctx, p); err != nil {
				a.log.Error("re-add peer", "port", port, "err", err)
				delete(a.peers, port)
			} else {
				a.peers[port] = p
			}
			// The Type-5-only filter knows peers by address.
			if err := a.applyType5Only(ctx, a.cfg); err != nil {
				a.log.Error("type-5-only policy", "err", err)
			}
		}
		a.mu.Unlock()
	}
}

// applyPeers brings the BGP sessions in line with cfg. An unnumbered
// neighbour whose link-local address cannot be found yet is retried by
// followLinkLocal.
func (a *Agent) applyPeers(ctx context.Context, cfg *config.Config) error {
	want := map[string]*config.Neighbor{}
	for name, n := range cfg.Default.Neighbors {
		want[name] = n
	}
	for name, p := range a.peers {
		n, ok := want[name]
		if ok {
			// Same session unless what it negotiates changed.
			next, err := a.peerFor(ctx, cfg, n)
			if errors.Is(err, errNoNeighborYet) {
				// Its neighbour is out of sight for now: the session
				// stays as it is; followLinkLocal re-points it.
				next.Address, next.Interface, next.LocalAddr, err = p.Address, p.Interface, p.LocalAddr, nil
			}
			ok = err == nil && next == p
		}
		if !ok {
			if err := a.bgp.DeletePeer(ctx, p); err != nil {
				a.log.Warn("delete peer", "neighbor", name, "err", err)
			}
			delete(a.peers, name)
		}
	}
	for port := range a.announced {
		if n := want[port]; n == nil || n.Type != "unnumbered" {
			a.unannounce(port)
		}
	}
	for name, n := range want {
		if _, ok := a.peers[name]; ok {
			continue
		}
		p, err := a.peerFor(ctx, cfg, n)
		if errors.Is(err, errNoNeighborYet) {
			a.log.Info("unnumbered neighbour not seen yet: its session starts when it appears", "neighbor", name, "err", err)
			continue
		}
		if err != nil {
			a.log.Warn("neighbor not started", "neighbor", name, "err", err)
			continue
		}
		if err := a.bgp.AddPeer(ctx, p); err != nil {
			return err
		}
		a.peers[name] = p
	}
	return a.applyType5Only(ctx, cfg)
}

// applyType5Only gives the export policy the addresses of the peers under
// a Type-5-only route-map. Called with a.mu held, after any peer change.
func (a *Agent) applyType5Only(ctx context.Context, cfg *config.Config) error {
	var type5Only []netip.Addr
	for name, p := range a.peers {
		if n := cfg.Default.Neighbors[name]; n != nil && a.type5Only(cfg, n) {
			type5Only = append(type5Only, p.Address)
		}
	}
	return a.bgp.SetType5Only(ctx, type5Only)
}

// type5Only says whether a neighbour's EVPN outbound route-map lets only
// Type-5 routes out, as the guide's control_t5 does. Route-maps that pass
// everything need no filter; other combinations are not supported yet and
// are enforced as Type-5 only, with a warning.
func (a *Agent) type5Only(cfg *config.Config, n *config.Neighbor) bool {
	g := cfg.Default.PeerGroups[n.PeerGroup]
	if g == nil || g.EVPNOutboundRouteMap == "" {
		return false
	}
	rm := cfg.RouteMaps[g.EVPNOutboundRouteMap]
	permits := func(routeType string) bool {
		for _, r := range rm.Rules { // sorted by sequence; the first match decides
			if r.MatchRouteType == "" || r.MatchRouteType == routeType {
				return r.Action == "permit"
			}
		}
		return false // route-maps end with an implicit deny
	}
	t5, t2, t3 := permits("ip-prefix"), permits("macip"), permits("multicast")
	switch {
	case t5 && !t2 && !t3:
		return true
	case t5 && t2 && t3:
		return false
	}
	a.log.Warn("route-map not supported as written; sending Type-5 routes only", "neighbor", n.Name, "route-map", rm.Name)
	return true
}
