package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xleaf/xleaf/control/rib"
	"github.com/xleaf/xleaf/control/show"
)

// BGPInfo is `show vrf X evpn bgp-info`.
func (a *Agent) BGPInfo(vrf string) (show.BGPInfo, error) {
	vs := a.vrfs.Load()
	v := vs.get(vrf)
	if v == nil {
		return show.BGPInfo{}, fmt.Errorf("vrf %s not configured", vrf)
	}
	vtep, rmac := a.leaf.vtep.String(), a.leaf.rmac.String()
	info := show.BGPInfo{VRF: vrf, VNI: v.VNI, LocalVTEP: vtep, RouterMAC: rmac, SystemIP: vtep, SystemMAC: rmac,
		RD: v.RD}
	for _, rt := range v.exportRTs() {
		info.ExportRTs = append(info.ExportRTs, rt.String())
	}
	for _, rv := range vs.rib() {
		if rv.Name == vrf {
			for _, rt := range rv.ImportRTs() {
				info.ImportRTs = append(info.ImportRTs, rt.String())
			}
		}
	}
	slices.Sort(info.ImportRTs)
	return info, nil
}

// RouteTable is `show route vrf X`: the selected routes and the default
// unreachable route the data path applies to everything else.
func (a *Agent) RouteTable(vrf string) (show.RouteTable, error) {
	cfg := a.cfg.Load()
	v := cfg.VRFs[vrf]
	ports := map[string][]string{} // VRF -> its ports
	for name, ifc := range cfg.Interfaces {
		if ifc.VRF != "" {
			ports[ifc.VRF] = append(ports[ifc.VRF], name)
		}
	}
	if v == nil {
		return show.RouteTable{}, fmt.Errorf("vrf %s not configured", vrf)
	}
	entries, err := a.pipeline.rib.Table(vrf)
	if err != nil {
		return show.RouteTable{}, err
	}
	// Each family's default is unreachable, as Linux and FRR install it;
	// IPv6's link-local subnet is on every port of the VRF, the kernel's.
	started := *a.started.Load()
	t := show.RouteTable{VRF: vrf, Routes: []show.Route{{Prefix: "0.0.0.0/0", Protocol: "kernel", Distance: 255, Metric: 8192,
		Unreach: true, Installed: true, Since: started}},
		Routes6: []show.Route{{Prefix: "::/0", Protocol: "kernel", Distance: 255, Metric: 8192,
			Unreach: true, Installed: true, Since: started}}}
	for _, e := range entries {
		r := show.Route{Prefix: e.Prefix.String(), Installed: e.Installed, Since: e.Since}
		switch e.Source {
		case rib.SourceLocal, rib.SourceConnected:
			r.Protocol = "connected"
			if e.Source == rib.SourceLocal {
				r.Protocol = "local"
			}
			r.Nexthops = []show.Nexthop{{Iface: portOf(ports[e.HostVRF]), VRF: e.HostVRF}}
		case rib.SourceAggregate:
			r.Protocol, r.Distance, r.Blackhole = "bgp", 200, true
		case rib.SourceBGP:
			r.Protocol, r.Distance = "bgp", 20
			seen := map[string]bool{}
			for _, p := range e.Paths {
				nh := show.Nexthop{Via: p.VTEP.String()}
				if e.Prefix.Addr().Is6() { // FRR's IPv6 route over an IPv4 VTEP
					nh.Via = netip.AddrFrom16(p.VTEP.As16()).String()
				}
				if p.VNI != v.VNI {
					nh.Label = p.VNI
				}
				if key := fmt.Sprint(nh); !seen[key] {
					seen[key] = true
					r.Nexthops = append(r.Nexthops, nh)
				}
			}
		}
		if e.Prefix.Addr().Is6() {
			t.Routes6 = append(t.Routes6, r)
		} else {
			t.Routes = append(t.Routes, r)
		}
	}
	mine := slices.Sorted(slices.Values(ports[vrf]))
	for _, port := range mine {
		t.Routes6 = append(t.Routes6, show.Route{Prefix: "fe80::/64", Protocol: "connected", Installed: true, Since: started,
			Nexthops: []show.Nexthop{{Iface: port, VRF: vrf}}})
	}
	return t, nil
}

func portOf(ports []string) string {
	slices.Sort(ports)
	if len(ports) == 0 {
		return "-"
	}
	return strings.Join(ports, ",")
}

// BGPTable is `show bgp vrf X`: every candidate path per prefix, our own
// originations included.
func (a *Agent) BGPTable(vrf string) (show.BGPTable, error) {
	v := a.cfg.Load().VRFs[vrf]
	own := a.pipeline.exported(vrf)
	if v == nil {
		return show.BGPTable{}, fmt.Errorf("vrf %s not configured", vrf)
	}
	entries, err := a.pipeline.rib.Table(vrf)
	if err != nil {
		return show.BGPTable{}, err
	}
	t := show.BGPTable{VRF: vrf, RouterID: v.RouterID.String(), ASN: v.ASN}
	for _, e := range entries {
		v6 := e.Prefix.Addr().Is6()
		pfx := show.BGPPrefix{Prefix: e.Prefix.String()}
		t5, exported := own[e.Prefix.String()]
		ownBest := exported && e.Source != rib.SourceBGP
		if exported {
			origin := "i"
			if t5.Incomplete {
				origin = "?"
			}
			self := "0.0.0.0"
			if v6 {
				self = "::"
			}
			pfx.Paths = append(pfx.Paths, show.BGPPath{Best: ownBest, NextHop: self, Weight: 32768, Origin: origin})
		}
		for _, p := range e.All {
			bp := show.BGPPath{NextHop: p.VTEP.String(), ASPath: p.ASPath, Origin: originCode(p.Origin), Label: p.VNI, RD: p.RD, Peer: p.Peer}
			if v6 {
				bp.NextHop = netip.AddrFrom16(p.VTEP.As16()).String()
			}
			for _, rt := range p.RTs {
				bp.RTs = append(bp.RTs, rt.String())
			}
			if !ownBest && e.Source == rib.SourceBGP {
				bp.Best = len(e.Paths) > 0 && p == e.Paths[0]
				bp.Multipath = !bp.Best && slices.Contains(e.Paths, p)
			}
			pfx.Paths = append(pfx.Paths, bp)
		}
		switch {
		case len(pfx.Paths) == 0:
		case v6:
			t.Prefixes6 = append(t.Prefixes6, pfx)
		default:
			t.Prefixes = append(t.Prefixes, pfx)
		}
	}
	return t, nil
}

func originCode(o rib.Origin) string {
	switch o {
	case rib.OriginIGP:
		return "i"
	case rib.OriginEGP:
		return "e"
	}
	return "?"
}

// Summary is `show bgp summary`.
func (a *Agent) Summary(ctx context.Context) (show.Summary, error) { return a.summary(ctx, true) }

// summary is Summary; without sent, the peers' sent counts stay 0 and the
// table is not walked (metrics scrapes).
func (a *Agent) summary(ctx context.Context, sent bool) (show.Summary, error) {
	cfg := a.cfg.Load()
	s := show.Summary{RouterID: cfg.RouterID.String(), ASN: cfg.ASN}
	names := a.peers.names()
	if a.started.Load() == nil {
		return s, errors.New("xleafd is starting: BGP is not up yet")
	}
	peers, err := a.speaker.Peers(ctx, sent)
	if err != nil {
		return s, err
	}
	for _, p := range peers {
		name := names[p.Address]
		if name == "" {
			name = p.Address
		}
		up := "never"
		if !p.Since.IsZero() {
			up = time.Since(p.Since).Truncate(time.Second).String()
		}
		s.Peers = append(s.Peers, show.Peer{Neighbor: name, Address: p.Address, AS: p.ASN, State: p.State, Uptime: up,
			Since: p.Changed, Failures: p.Failures, Received: p.Received, Sent: p.Sent,
			GR: show.PeerGR{Mode: p.GR.Mode, Negotiated: p.GR.Negotiated, PeerRestarting: p.GR.PeerRestarting, PeerRestartTime: p.GR.PeerRestartTime}})
	}
	slices.SortFunc(s.Peers, func(x, y show.Peer) int { return strings.Compare(x.Neighbor, y.Neighbor) })
	return s, nil
}

// Counters is `show counters`, with VRF names.
func (a *Agent) Counters() (show.Counters, error) {
	cs, err := a.dp.Counters()
	if err != nil {
		return nil, err
	}
	vs := a.vrfs.Load()
	var out show.Counters
	for k, c := range cs {
		out = append(out, show.Counter{VRF: vs.nameOf(k.VRF), Reason: k.Reason.String(), Dropped: k.Reason.Dropped(), Packets: c.Packets, Bytes: c.Bytes})
	}
	slices.SortFunc(out, func(x, y show.Counter) int {
		if c := strings.Compare(x.VRF, y.VRF); c != 0 {
			return c
		}
		return strings.Compare(x.Reason, y.Reason)
	})
	return out, nil
}

// LeakMatrix is `show vrf leak-matrix`: the data path's forwarded packets
// by (ingress VRF, where they went), with VRF names; a VNI that no VRF
// here has (a VRF of another site) is its own column.
func (a *Agent) LeakMatrix() (show.LeakMatrix, error) {
	ls, err := a.dp.Leaks()
	if err != nil {
		return show.LeakMatrix{}, err
	}
	vs := a.vrfs.Load()
	cells := map[[2]string]show.Leak{}
	for l, c := range ls {
		cell := show.Leak{From: vs.nameOf(l.From)}
		if l.Local {
			cell.To = vs.nameOf(l.HostVRF)
		} else if to, here := vs.vniName(l.VNI); here {
			cell.To = to
		} else {
			cell.To, cell.VNI = to, l.VNI
		}
		k := [2]string{cell.From, cell.To}
		cell.Packets, cell.Bytes = cells[k].Packets+c.Packets, cells[k].Bytes+c.Bytes
		cells[k] = cell
	}
	var m show.LeakMatrix
	for _, c := range cells {
		m.Cells = append(m.Cells, c)
	}
	slices.SortFunc(m.Cells, func(x, y show.Leak) int {
		return cmp.Or(strings.Compare(x.From, y.From), cmp.Compare(x.VNI, y.VNI), strings.Compare(x.To, y.To))
	})
	return m, nil
}

// Underlay is show underlay.
func (a *Agent) Underlay() (show.Underlay, error) { return a.hops.view() }
