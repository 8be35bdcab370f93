package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Validate checks what no single key can: names that refer to other keys,
// VNIs unique across VRFs, BGP settings that must come from somewhere. It
// fills in the defaults a tenant VRF takes from the global BGP instance
// (ASN, router-id) and a neighbour's type from its name. Parse calls it;
// it is safe to call again.
func (c *Config) Validate() error {
	var errs []error
	fail := func(pos Position, format string, args ...any) {
		errs = append(errs, posErrorf(pos, format, args...))
	}

	vniOwner := map[uint32]string{}
	for _, name := range slices.Sorted(maps.Keys(c.VRFs)) {
		v := c.VRFs[name]
		at := c.at("vrf " + name)
		if name == "default" || name == "mgmt" {
			fail(at, "vrf %s is not a tenant VRF", name)
			continue
		}
		if v.EVPN && v.VNI == 0 {
			fail(c.at("vrf "+name+" evpn enable"), "vrf %s: evpn enable on but no evpn vni", name)
		} else if v.VNI == 0 {
			// xleaf routes a tenant VRF only through its L3VNI.
			fail(at, "vrf %s: no evpn vni (nv set vrf %s evpn vni N): xleaf needs an L3VNI for every tenant VRF", name, name)
		}
		if v.VNI > maxVNI {
			fail(c.at("vrf "+name+" evpn vni"), "vrf %s: vni %d out of range, expected 1..%d", name, v.VNI, maxVNI)
		}
		if v.VNI != 0 {
			if other, ok := vniOwner[v.VNI]; ok {
				p1, p2 := c.at("vrf "+other+" evpn vni"), c.at("vrf "+name+" evpn vni")
				first, second := other, name
				if comparePos(p2, p1) < 0 {
					first, second, p1, p2 = name, other, p2, p1
				}
				fail(p2, "vni %d is used by both vrf %s (%s) and vrf %s (%s); a VNI names one VRF",
					v.VNI, first, p1, second, p2)
			} else {
				vniOwner[v.VNI] = name
			}
		}
		if v.ASN == 0 {
			v.ASN = c.ASN
		}
		if !v.RouterID.IsValid() {
			v.RouterID = c.RouterID
		}
		if v.BGP && v.ASN == 0 {
			fail(c.at("vrf "+name+" router bgp enable"),
				"vrf %s: router bgp enable on but no autonomous-system, neither its own nor router bgp autonomous-system", name)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(c.Interfaces)) {
		i := c.Interfaces[name]
		if i.VRF != "" && c.VRFs[i.VRF] == nil {
			fail(c.at("interface "+name+" ip vrf"), "interface %s: ip vrf %s is not defined (no \"vrf %s\" keys)", name, i.VRF, i.VRF)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(c.RouteMaps)) {
		for _, r := range c.RouteMaps[name].Rules {
			if r.Action == "" {
				key := fmt.Sprintf("router policy route-map %s rule %d", name, r.Seq)
				fail(c.at(key), "%s has no action, expected permit or deny", key)
			}
		}
	}

	d := &c.Default
	for _, name := range slices.Sorted(maps.Keys(d.PeerGroups)) {
		g := d.PeerGroups[name]
		key := "vrf default router bgp peer-group " + name
		if hold := cmp.Or(g.HoldTime, 9); g.Keepalive >= hold {
			fail(c.at(key+" timers keepalive"), "%s: timers keepalive %d is not below the hold time %d: the session would expire between keepalives", key, g.Keepalive, hold)
		}
		if rm := g.EVPNOutboundRouteMap; rm != "" && c.RouteMaps[rm] == nil {
			fail(c.at(key+" address-family l2vpn-evpn policy outbound route-map"),
				"%s: route-map %s is not defined (no \"router policy route-map %s\" keys)", key, rm, rm)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.Neighbors)) {
		n := d.Neighbors[name]
		key := "vrf default router bgp neighbor " + name
		_, err := netip.ParseAddr(name)
		isAddr := err == nil
		if n.Type == 0 {
			n.Type = Unnumbered
			if isAddr {
				n.Type = Numbered
			}
		}
		switch {
		case n.Type == Numbered && !isAddr:
			fail(c.at(key+" type"), "%s: type numbered needs an IP address; an interface is unnumbered", key)
		case n.Type == Unnumbered && isAddr:
			fail(c.at(key+" type"), "%s: type unnumbered needs an interface; an IP address is numbered", key)
		}
		g := d.PeerGroups[n.PeerGroup]
		if n.PeerGroup != "" && g == nil {
			fail(c.at(key+" peer-group"), "%s: peer-group %s is not defined (no \"vrf default router bgp peer-group %s\" keys)",
				key, n.PeerGroup, n.PeerGroup)
			continue
		}
		if d.NeighborRemoteAS(n).Kind == ASUnset {
			if g == nil {
				fail(c.at(key), "%s: no remote-as and no peer-group to take it from", key)
			} else {
				fail(c.at(key), "%s: no remote-as, neither its own nor its peer-group %s's", key, n.PeerGroup)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return joinSorted(errs)
}

// NeighborRemoteAS is the remote-as a neighbour peers with: its own, or
// else its peer group's.
func (d *Default) NeighborRemoteAS(n *Neighbor) RemoteAS {
	if n.RemoteAS.Kind != ASUnset {
		return n.RemoteAS
	}
	if g := d.PeerGroups[n.PeerGroup]; g != nil {
		return g.RemoteAS
	}
	return RemoteAS{}
}

// at is where a key, or failing that the first key under it, was written;
// the zero Position for a Config built in code.
func (c *Config) at(key string) Position {
	if p, ok := c.Where[key]; ok {
		return p
	}
	var best Position
	for k, p := range c.Where {
		if strings.HasPrefix(k, key+" ") && (best.Line == 0 || comparePos(p, best) < 0) {
			best = p
		}
	}
	return best
}

func comparePos(a, b Position) int {
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
}
