package control

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/xleaf/xleaf/control/bgp"
	"github.com/xleaf/xleaf/control/rib"
)

// TestInternedPaths: routes with the same attributes share one set, a
// route that differs in any of them gets its own (a shared set given to
// the wrong route would forward it with another's VTEP, VNI or targets),
// and each path keeps its own prefix and host MAC.
func TestInternedPaths(t *testing.T) {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	base := func() bgp.Route {
		return bgp.Route{Peer: "10.0.0.1", RD: "10.10.10.1:2", Prefix: netip.MustParsePrefix("192.168.1.0/24"),
			VTEP: netip.MustParseAddr("10.10.10.1"), VNI: 4001, RouterMAC: mac("44:38:39:22:dd:01"),
			RTs: []bgp.RT{{ASN: 65101, Value: 4001}}, ASPath: []uint32{65199, 65101}}
	}
	var in interned
	r0 := base()
	first := in.path(&r0)
	sets := map[*rib.Attrs]string{first.Attrs: "the first"}
	r1 := base()
	r1.Prefix = netip.MustParsePrefix("192.168.2.0/24")
	same := in.path(&r1)
	if same.Attrs != first.Attrs {
		t.Error("two routes with the same attributes do not share a set")
	}
	if same.Prefix != r1.Prefix || first.Prefix != r0.Prefix {
		t.Errorf("prefixes %v %v, want %v %v", first.Prefix, same.Prefix, r0.Prefix, r1.Prefix)
	}
	for name, change := range map[string]func(*bgp.Route){
		"peer":       func(r *bgp.Route) { r.Peer = "10.0.0.2" },
		"rd":         func(r *bgp.Route) { r.RD = "10.10.10.1:3" },
		"vtep":       func(r *bgp.Route) { r.VTEP = netip.MustParseAddr("10.10.10.2") },
		"vni":        func(r *bgp.Route) { r.VNI = 4002 },
		"router mac": func(r *bgp.Route) { r.RouterMAC = mac("44:38:39:22:dd:02") },
		"no rmac":    func(r *bgp.Route) { r.RouterMAC = nil },
		"rt value":   func(r *bgp.Route) { r.RTs = []bgp.RT{{ASN: 65101, Value: 4002}} },
		"rt addr":    func(r *bgp.Route) { r.RTs = []bgp.RT{{Addr: netip.MustParseAddr("10.10.10.1"), Value: 4001}} },
		"two rts":    func(r *bgp.Route) { r.RTs = append(r.RTs, bgp.RT{ASN: 65101, Value: 4002}) },
		"no rts":     func(r *bgp.Route) { r.RTs = nil },
		"as path":    func(r *bgp.Route) { r.ASPath = []uint32{65199, 65102} },
		"longer":     func(r *bgp.Route) { r.ASPath = append(r.ASPath, 65101) },
		"origin":     func(r *bgp.Route) { r.Origin = 2 },
		"local pref": func(r *bgp.Route) { r.LocalPref = 200 },
		"type-2":     func(r *bgp.Route) { r.Type2 = true },
	} {
		r := base()
		change(&r)
		p := in.path(&r)
		if p.Attrs == first.Attrs {
			t.Errorf("%s: a route with another %s shares the first's set", name, name)
		}
		if q := in.path(&r); q.Attrs != p.Attrs {
			t.Errorf("%s: the same route twice got two sets", name)
		}
		if other, ok := sets[p.Attrs]; ok {
			t.Errorf("%s and %s share a set", name, other)
		}
		sets[p.Attrs] = name
	}
	want := &rib.Attrs{Peer: "10.0.0.1", RD: "10.10.10.1:2", VTEP: netip.MustParseAddr("10.10.10.1"), VNI: 4001,
		RouterMAC: mac("44:38:39:22:dd:01"), RTs: []rib.RT{{ASN: 65101, Value: 4001}}, ASPath: []uint32{65199, 65101}}
	if diff := cmp.Diff(want, first.Attrs, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("the first route's set (-want +got):\n%s", diff)
	}
	r2 := base()
	r2.Type2, r2.HostMAC = true, mac("02:00:00:00:00:01")
	r3 := r2
	r3.HostMAC = mac("02:00:00:00:00:02")
	a, b := in.path(&r2), in.path(&r3)
	if a.Attrs != b.Attrs || a.HostMAC.String() != "02:00:00:00:00:01" || b.HostMAC.String() != "02:00:00:00:00:02" {
		t.Errorf("two hosts' Type-2 routes: sets shared %v, MACs %v %v", a.Attrs == b.Attrs, a.HostMAC, b.HostMAC)
	}
	if a.Key() == b.Key() {
		t.Error("two hosts' Type-2 routes have one key")
	}
}
